package grovepebble

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/antientropy/grove/engine"
)

// TestScanRate: a small ScanRate makes each scan take at least the time
// its bytes take at that rate. Only lower bounds: a shared machine may be
// slower, never faster than the bucket lets it.
func TestScanRate(t *testing.T) {
	dir := t.TempDir()
	rs := testRanges()
	n := openNode(t, dir, created(Options{Ranges: rs}))
	keys := rangeKeys(rs, "k", 400, true)
	var rows []engine.Row
	for _, k := range keys {
		rows = append(rows, engine.Row{Key: k, Value: make([]byte, 1000), TS: 1})
	}
	if _, err := n.Apply(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	var stored int64 // bytes of keys and values, as the layout stores them
	for _, k := range keys {
		stored += int64(keyHeader + len(k) + valueHeader + 1000)
	}
	const rate = 2e6 // bytes per second
	pass := time.Duration(float64(stored) / rate * float64(time.Second))

	// One range's rows, through a RangeReplica's Scan.
	n = openNode(t, dir, Options{Ranges: rs, ScanRate: rate})
	start := time.Now()
	var read int64
	for _, r := range n.Replicas() {
		if err := r.Scan(context.Background(), r.Range(), func(row *engine.Row) error { read++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); read != int64(len(keys)) || took < pass/2 {
		t.Errorf("scan of %d rows (%d bytes) at %.0f B/s took %v, want at least %v", read, stored, rate, took, pass/2)
	}
	n.Close()

	// Building every tree again (once: the depths are planned from the
	// recorded row count, not from a counting pass).
	if err := os.RemoveAll(filepath.Join(dir, DefaultTreesDir)); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	n = openNode(t, dir, Options{Ranges: rs, ScanRate: rate})
	if took := time.Since(start); n.OpenStats().RowsScanned != int64(len(keys)) || took < pass/2 {
		t.Errorf("open building %d trees read %d rows in %v, want %d rows in at least %v", len(rs), n.OpenStats().RowsScanned, took, len(keys), pass/2)
	}
	n.Close()

	// The validation scan of a node of one range.
	one := t.TempDir()
	n1 := openNode(t, one, created(Options{}))
	if _, err := n1.Apply(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	n1.Close()
	start = time.Now()
	n1 = openNode(t, one, Options{ScanRate: rate})
	if took := time.Since(start); took < pass/2 {
		t.Errorf("validation scan of %d bytes at %.0f B/s took %v, want at least %v", stored, rate, took, pass/2)
	}
	n1.Close()

	for _, bad := range []float64{-1, math.NaN()} {
		if _, err := Open(context.Background(), one, Options{ScanRate: bad}); !errors.Is(err, ErrOptions) {
			t.Errorf("ScanRate %v: %v, want ErrOptions", bad, err)
		}
	}
	// A context that ends stops a throttled scan: here Open's validation
	// scan, which at 1000 B/s would take minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := Open(ctx, one, Options{ScanRate: 1000})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 30*time.Second {
		t.Errorf("throttled Open past its deadline: %v after %v", err, time.Since(start))
	}
}
