package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/rpc"
)

// served is a serve command running in the test's process.
type served struct {
	first  string // its first line
	cancel context.CancelFunc
	done   chan int
	errs   *bytes.Buffer
}

// stop ends serve and returns its exit status and stderr.
func (s *served) stop() (int, string) {
	s.cancel()
	return <-s.done, s.errs.String()
}

// startServe runs serve with args and --listen on a free loopback port,
// waits for its first line, and returns its address. The test's end stops
// it if the test did not.
func startServe(t *testing.T, args ...string) (string, *served) {
	t.Helper()
	addr := freeAddr(t)
	return addr, startServeAt(t, addr, args...)
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServeAt is startServe on addr.
func startServeAt(t *testing.T, addr string, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{cancel: cancel, done: make(chan int, 1), errs: &bytes.Buffer{}}
	pr, pw := io.Pipe()
	go func() {
		s.done <- run(ctx, append(args, "--listen", addr), pw, s.errs)
		pw.Close()
	}()
	t.Cleanup(cancel)
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		cancel()
		t.Fatalf("serve %v said nothing: %s", args, s.errs.String())
	}
	s.first = lines.Text()
	go io.Copy(io.Discard, pr)
	return s
}

// TestServeTakesWrites: serve --ring answers RowService on its port. A
// coordinator's puts, deletes and batches go through the write path (the
// trees follow them: verify passes after), a row of another node's range is
// refused naming its key, and Get reads back what won.
func TestServeTakesWrites(t *testing.T) {
	dir := t.TempDir()
	ringPath := filepath.Join(dir, "ring.json")
	if err := os.WriteFile(ringPath, []byte(testRing), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "db")
	lines, _ := ringKeys("k", 100, true)
	if code, _, errs := runCmd(t, "load", "--db", db, "--rows", writeRows(t, dir, "rows.jsonl", lines), "--ring", ringPath, "--node", "n1"); code != exitOK {
		t.Fatal(errs)
	}
	addr, stop := startServe(t, "serve", "--db", db, "--ring", ringPath, "--node", "n1")
	if !strings.HasPrefix(stop.first, "serving 100 rows") {
		t.Fatalf("serve said %q", stop.first)
	}
	rc, err := rpc.NewRowClient("http://"+addr, rpc.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.CloseIdle()
	_, newKeys := ringKeys("new", 30, true)
	_, foreign := ringKeys("f", 1, false)
	_, oldKeys := ringKeys("k", 3, true)
	wctx := context.Background()
	if ok, err := rc.Put(wctx, []byte(newKeys[0]), []byte("x"), 5); !ok || err != nil {
		t.Fatalf("Put of a new key: %v, %v", ok, err)
	}
	// The node writes blind: an older version is taken, and the stored one
	// stays because it wins.
	before, _, err := rc.Get(wctx, []byte(oldKeys[0]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Put(wctx, []byte(oldKeys[0]), []byte("older"), 0); err != nil {
		t.Fatalf("Put older than the stored version: %v", err)
	}
	if after, ok, err := rc.Get(wctx, []byte(oldKeys[0])); err != nil || !ok || string(after.Value) != string(before.Value) || after.TS != before.TS {
		t.Fatalf("after a Put older than the stored version %+v the key holds %+v, %v, %v", before, after, ok, err)
	}
	if ok, err := rc.Delete(wctx, []byte(oldKeys[1]), 9); !ok || err != nil {
		t.Fatalf("Delete: %v, %v", ok, err)
	}
	var batch []engine.Row
	for _, k := range newKeys[1:] {
		batch = append(batch, engine.Row{Key: []byte(k), Value: []byte("b"), TS: 5})
	}
	if n, err := rc.Apply(wctx, batch); n != len(batch) || err != nil {
		t.Fatalf("Apply: %d, %v; want %d", n, err, len(batch))
	}
	if _, err := rc.Put(wctx, []byte(foreign[0]), []byte("x"), 5); !errors.Is(err, rpc.ErrRefused) || !strings.Contains(err.Error(), foreign[0]) {
		t.Fatalf("Put of a row of another node's range: %v; want rpc.ErrRefused naming it", err)
	}
	if _, err := rc.Apply(wctx, append(batch[:1:1], engine.Row{Key: []byte(foreign[0]), TS: 6})); !errors.Is(err, rpc.ErrRefused) {
		t.Fatalf("a batch with a foreign row: %v; want rpc.ErrRefused", err)
	}
	for _, c := range []struct {
		key     string
		value   string
		ts      int64
		deleted bool
	}{{newKeys[0], "x", 5, false}, {oldKeys[0], fmt.Sprintf("v%d", 0), 1, false}, {oldKeys[1], "", 9, true}} {
		r, found, err := rc.Get(wctx, []byte(c.key))
		if err != nil || !found || string(r.Value) != c.value || r.TS != c.ts || r.Deleted != c.deleted {
			t.Fatalf("Get(%s) = %+v, %v, %v; want value %q ts %d deleted %v", c.key, r, found, err, c.value, c.ts, c.deleted)
		}
	}
	if _, found, err := rc.Get(wctx, []byte("never-written")); found || err != nil {
		t.Fatalf("Get of an absent key: found %v, %v", found, err)
	}
	if code, errs := stop.stop(); code != exitOK {
		t.Fatalf("serve: exit %d, %s", code, errs)
	}
	if code, out, errs := runCmd(t, "verify", "--db", db, "--ring", ringPath, "--node", "n1"); code != exitOK || !strings.Contains(out, "from its 130 rows") {
		t.Fatalf("verify after the writes: exit %d, %q %q; want 130 rows", code, out, errs)
	}
	_, dump, _ := runCmd(t, "dump", "--db", db)
	if strings.Contains(dump, foreign[0]) {
		t.Fatalf("the refused row (token %d) was stored", token.Murmur3{}.Token([]byte(foreign[0])))
	}
}
