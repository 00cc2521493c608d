package nodebench

import (
	"bytes"
	"context"
	"encoding/json"
	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestScan: a tiny run gives every figure, positive, from the rows it was
// asked for, over more than one range.
func TestScan(t *testing.T) {
	const rows = 3000
	f, err := Scan(context.Background(), Options{Rows: rows, Reps: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if f.Rows != rows || f.Ranges < 2 || f.Reps != 1 || len(f.ByWorkers) != len(ScanWorkers) {
		t.Fatalf("figures of %d rows, %d ranges, %d reps, %d core counts; want %d rows, several ranges, 1 rep, %d core counts",
			f.Rows, f.Ranges, f.Reps, len(f.ByWorkers), rows, len(ScanWorkers))
	}
	var rep Report
	rep.Add(f.Figures()...)
	for _, name := range []string{"scan_vs_floor", "scan_vs_floor_1core", "scan_vs_floor_2core",
		"scan_rows_per_s", "floor_iter_rows_per_s", "floor_hash_rows_per_s",
		"scan_rows_per_s_1core", "floor_iter_rows_per_s_1core", "floor_hash_rows_per_s_1core",
		"validate_vs_floor", "validate_vs_floor_2core", "validate_rows_per_s", "cores_available"} {
		if v, ok := rep.Figures[name]; !ok || !(v > 0) {
			t.Errorf("figure %s = %v (present %v), want a positive value", name, v, ok)
		}
	}
	if got := rep.Figures["scan_rows"]; got != rows {
		t.Errorf("scan_rows = %v, want %d", got, rows)
	}
	if got, want := rep.Figures["scan_vs_floor"], min(rep.Figures["scan_vs_floor_1core"], rep.Figures["scan_vs_floor_2core"]); got != want {
		t.Errorf("scan_vs_floor = %v, want the lower of the core counts' %v", got, want)
	}
}

// TestScanChecks: each timed side fails when it did not do the work the
// rows call for — other rows, fewer rows — so that a benchmark that
// skipped work cannot report a figure.
func TestScanChecks(t *testing.T) {
	ctx := context.Background()
	d, err := makeDataset(2000)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if err := writeDB(ctx, db, d); err != nil {
		t.Fatal(err)
	}
	// other is the same rows but one value: not what the database holds.
	other := *d
	other.rows = slices.Clone(d.rows)
	other.rows[len(other.rows)/2].Value = bytes.Repeat([]byte{'x'}, valueBytes)
	// more is the rows and one more row: more than the database holds.
	more := *d
	more.rows = append(slices.Clone(d.rows), d.rows[0])
	more.tokens = append(slices.Clone(d.tokens), d.tokens[0])

	for _, tc := range []struct {
		name string
		d    *dataset
		kind int
		want string // in the error; "" for none
	}{
		{"scan of the rows", d, kindScan, ""},
		{"iteration of the rows", d, kindIter, ""},
		{"hashing of the rows", d, kindHash, ""},
		{"one-range scan of the rows", d, kindValidate, ""},
		{"one-range scan against other rows", &other, kindValidate, "root"},
		{"one-range scan against more rows", &more, kindValidate, "the database holds"},
		{"scan against other rows", &other, kindScan, "root"},
		{"hashing against other rows", &other, kindHash, "sum to"},
		{"scan against more rows", &more, kindScan, "rows"},
		{"iteration against more rows", &more, kindIter, "the iteration read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newScanMeasure(tc.d, db, filepath.Join(dir, "trees"))
			if tc.kind == kindHash && tc.d == &other {
				m.wantSum = d.digestSum() // the database's rows, not other's
			}
			_, err := m.run(ctx, tc.kind, 2)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("%v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestReport: the JSON form is {"figures": {...}} alone, and the table
// says which targets were met.
func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   float64
		verdict string
	}{
		{"met", ScanTarget + 0.1, "(met)"},
		{"at the target", ScanTarget, "(met)"},
		{"missed", ScanTarget - 0.1, "(MISSED)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep Report
			rep.Add(Figure{"scan_vs_floor", tc.value}, Figure{"scan_rows", 10})
			var js bytes.Buffer
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var top map[string]map[string]float64
			if err := json.Unmarshal(js.Bytes(), &top); err != nil {
				t.Fatalf("%v in %s", err, js.String())
			}
			if len(top) != 1 || top["figures"]["scan_vs_floor"] != tc.value || top["figures"]["scan_rows"] != 10 {
				t.Fatalf("JSON %s, want {\"figures\": {\"scan_vs_floor\": %v, \"scan_rows\": 10}}", js.String(), tc.value)
			}
			var text strings.Builder
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(text.String(), "\n")
			if len(lines) < 3 || !strings.HasPrefix(lines[1], "scan_vs_floor ") || !strings.HasSuffix(strings.TrimSpace(lines[1]), tc.verdict) {
				t.Fatalf("table:\n%s\nwant scan_vs_floor first, ending %s", text.String(), tc.verdict)
			}
		})
	}
}

// TestScrubMeasured: the scrub measurement reads at a rate it measures —
// nothing read would be no scrub at all — and times writes with and
// without it.
func TestScrubMeasured(t *testing.T) {
	f, err := Scrub(context.Background(), Options{Quick: true, Rows: 20_000, Reps: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if f.Read <= 0 || f.Plain <= 0 || f.Scrubbed <= 0 || f.DefaultRate != float64(grovepebble.MinScrubRate) {
		t.Fatalf("%+v: want a rate read, both write times, and the default rate of a small database (the floor)", f)
	}
	names := map[string]bool{}
	for _, fig := range f.Figures() {
		names[fig.Name] = true
	}
	for _, want := range []string{"scrub_rate_ratio", "scrub_write_fg_ratio_256"} {
		if !names[want] {
			t.Errorf("no figure %s in %v", want, f.Figures())
		}
	}
}

// TestTargetWithin: a two-sided target is met inside its band only.
func TestTargetWithin(t *testing.T) {
	tg := Target{Value: 1, Within: 0.1}
	for _, tc := range []struct {
		v    float64
		want bool
	}{{1, true}, {0.9, true}, {1.1, true}, {0.89, false}, {1.11, false}} {
		if got := tg.Met(tc.v); got != tc.want {
			t.Errorf("%v within %v: %v, want %v", tc.v, tg, got, tc.want)
		}
	}
}
