package grovepebble

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// fingerprint describes everything at path — each file's name, size and
// SHA-256 — or "absent", so a test can tell that nothing was written there.
func fingerprint(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return "absent"
	}
	var b strings.Builder
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s dir=%v", p, d.IsDir())
		if !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %d %x", len(data), sha256.Sum256(data))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// rawKeys returns every key and value in the Pebble database in dir, read
// with Pebble itself rather than a Node.
func rawKeys(t *testing.T, dir string) map[string]string {
	t.Helper()
	// A node's database names its merge operator; another application's,
	// Pebble's default.
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, ErrorIfNotExists: true, Merger: Merger, ReadOnly: true})
	if err != nil {
		db, err = pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, ErrorIfNotExists: true, ReadOnly: true})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[string]string{}
	for ok := it.First(); ok; ok = it.Next() {
		out[string(it.Key())] = string(it.Value())
	}
	return out
}

// pebbleDB makes a Pebble database in dir holding keys, as another
// application would.
func pebbleDB(t *testing.T, dir string, keys map[string]string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range keys {
		if err := db.Set([]byte(k), []byte(v), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// Open makes a node only when told to, and only where nothing is; what is
// not a node it refuses, with or without Create, and writes nothing there.
func TestOpenRefusesWhatIsNotANode(t *testing.T) {
	foreign := map[string]string{"user:1": "someone else's"}
	for _, c := range []struct {
		name string
		// make prepares the path to open inside parent and returns it.
		make func(t *testing.T, parent string) string
		// isPebble: Pebble itself rewrites its housekeeping files on
		// open, so for a Pebble database "untouched" means its keys.
		isPebble bool
		// want is Open's error without Create; wantCreate with it (nil:
		// a new node).
		want, wantCreate error
		wantMsg          string
	}{
		{
			name:    "a path that does not exist",
			make:    func(t *testing.T, parent string) string { return filepath.Join(parent, "nope") },
			want:    ErrNotExist,
			wantMsg: "does not exist",
		},
		{
			name: "an empty directory",
			make: func(t *testing.T, parent string) string {
				dir := filepath.Join(parent, "empty")
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want:    ErrNotExist,
			wantMsg: "is an empty directory",
		},
		{
			name: "a file",
			make: func(t *testing.T, parent string) string {
				path := filepath.Join(parent, "rows.jsonl")
				if err := os.WriteFile(path, []byte(`{"key": "a", "ts": 1}`+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return path
			},
			want: ErrNotNode, wantCreate: ErrNotNode,
			wantMsg: "is a file",
		},
		{
			name: "a directory of other files",
			make: func(t *testing.T, parent string) string {
				dir := filepath.Join(parent, "home")
				if err := os.MkdirAll(filepath.Join(dir, "docs"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("notes"), 0o644); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: ErrNotNode, wantCreate: ErrNotNode,
			wantMsg: `is not a Pebble database (no MANIFEST; it holds 2 entries, such as "docs")`,
		},
		{
			name: "another application's Pebble database",
			make: func(t *testing.T, parent string) string {
				dir := filepath.Join(parent, "other")
				pebbleDB(t, dir, foreign)
				return dir
			},
			isPebble: true,
			want:     ErrNotNode, wantCreate: ErrNotNode,
			wantMsg: `was not written by grove: it holds keys (such as "user:1")`,
		},
		{
			name: "an empty Pebble database",
			make: func(t *testing.T, parent string) string {
				dir := filepath.Join(parent, "fresh")
				pebbleDB(t, dir, nil)
				return dir
			},
			isPebble: true,
			want:     ErrNotExist,
			wantMsg:  "holds an empty Pebble database, not yet a node",
		},
	} {
		for _, create := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/create=%v", c.name, create), func(t *testing.T) {
				path := c.make(t, t.TempDir())
				before := fingerprint(t, path)
				var keysBefore map[string]string
				if c.isPebble {
					keysBefore = rawKeys(t, path)
				}
				want := c.want
				if create {
					want = c.wantCreate
				}
				n, err := Open(context.Background(), path, Options{Depth: 4, Create: create})
				if want == nil {
					if err != nil {
						t.Fatalf("Open with Create: %v", err)
					}
					if n.Rows() != 0 {
						t.Errorf("a new node holds %d rows", n.Rows())
					}
					if err := n.Close(); err != nil {
						t.Fatal(err)
					}
					// It is a node now: it opens without Create.
					n = openNode(t, path, Options{Depth: 4})
					if n.Rows() != 0 {
						t.Errorf("the reopened node holds %d rows", n.Rows())
					}
					return
				}
				if err == nil {
					n.Close()
					t.Fatalf("Open succeeded, want %v", want)
				}
				msg := err.Error()
				if !errors.Is(err, want) || !strings.Contains(msg, path) || !strings.Contains(msg, c.wantMsg) || strings.Contains(msg, "\n") {
					t.Fatalf("Open = %q, want %v, one line naming %s and saying %q", msg, want, path, c.wantMsg)
				}
				if c.isPebble {
					if got := rawKeys(t, path); !maps.Equal(got, keysBefore) {
						t.Fatalf("keys after a refused Open: %q, before %q", got, keysBefore)
					}
					return
				}
				if after := fingerprint(t, path); after != before {
					t.Fatalf("a refused Open changed %s:\nbefore\n%s\nafter\n%s", path, before, after)
				}
			})
		}
	}
}

// A database open elsewhere is ErrLocked, and the message says so instead of
// "resource temporarily unavailable"; the open node is not disturbed. (The
// command's tests take the lock from another process.)
func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, Options{Depth: 4, Create: true})
	_, err := Open(context.Background(), dir, Options{Depth: 4})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "the database at "+dir+" is in use") {
		t.Fatalf("second Open = %v, want ErrLocked saying the database at %s is in use", err, dir)
	}
	if err := n.Put(context.Background(), []byte("k"), []byte("v"), 1); err != nil {
		t.Fatalf("the first node after the refused Open: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir, Options{Depth: 4})
	if n.Rows() != 1 {
		t.Fatalf("reopened: %d rows, want 1", n.Rows())
	}
}

// corruptionRows writes rows enough for an sstable of several data blocks
// into a new node in dir, flushes them into a table, and closes the node.
// It returns the rows and the table's path.
func corruptionRows(t *testing.T, dir string) ([]engine.Row, string) {
	t.Helper()
	n := openNode(t, dir, Options{Depth: 4, Create: true})
	var rows []engine.Row
	for i := range 3000 {
		rows = append(rows, engine.Row{Key: fmt.Appendf(nil, "key:%05d", i), Value: fmt.Appendf(nil, "value %d of a row", i), TS: 1})
	}
	if _, err := n.Apply(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := n.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	tables, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil || len(tables) != 1 {
		t.Fatalf("tables %v, %v; want one", tables, err)
	}
	return rows, tables[0]
}

// flip inverts the bytes of path in [from, to) fractions of its length, in
// place (the same inode, so an open reader sees it).
func flip(t *testing.T, path string, from, to float64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := int(from*float64(len(data))), int(to*float64(len(data)))
	for i := lo; i < hi; i++ {
		data[i] ^= 0xff
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data[lo:hi], int64(lo)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A damaged Pebble file that Open cannot get past fails it with
// ErrCorrupt naming the file, in one line — where Pebble's default would
// log a stack trace and exit(1). (Damaged data blocks it gets past: see
// TestOpenDropsDamagedTable.)
func TestOpenCorruptFile(t *testing.T) {
	for _, c := range []struct {
		name     string
		file     func(dir, table string) string
		from, to float64
		// names is what the error must name: the table, or the directory
		// for a file Pebble does not attach a path to.
		names func(dir, table string) string
	}{
		// The first blocks hold the metadata keys, which the node keeps,
		// and the footer the table's index: neither can be dropped.
		{"a table's first blocks", func(_, table string) string { return table }, 0, 0.05, func(_, table string) string { return table }},
		{"a table's footer", func(_, table string) string { return table }, 0.99, 1, func(_, table string) string { return table }},
		{"the MANIFEST", func(dir, _ string) string {
			m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
			return m[len(m)-1]
		}, 0, 0.5, func(dir, _ string) string { return "the database at " + dir }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_, table := corruptionRows(t, dir)
			flip(t, c.file(dir, table), c.from, c.to)
			n, err := Open(context.Background(), dir, Options{Depth: 4})
			if err == nil {
				n.Close()
				t.Fatal("Open of a damaged database succeeded")
			}
			msg := err.Error()
			want := "grovepebble: corrupt data in " + c.names(dir, table) + ": "
			if !errors.Is(err, ErrCorrupt) || !pebble.IsCorruptionError(err) || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
				t.Fatalf("Open = %q; want ErrCorrupt and pebble.ErrCorruption, one line containing %q", msg, want)
			}
		})
	}
}

// TestOpenDropsDamagedTable: a node of one range whose table has damaged
// data blocks opens, dropping the rows of the table's span (as its scrub
// would) and building its tree from the rows left, and says so in
// ScanStats; the next repair brings the rows back.
func TestOpenDropsDamagedTable(t *testing.T) {
	dir := t.TempDir()
	rows, table := corruptionRows(t, dir)
	flip(t, table, 0.25, 0.5)
	log := &recLogger{}
	n := openNode(t, dir, Options{Depth: 4, Pebble: &pebble.Options{Logger: log}})
	st := n.ScanStats()
	if len(st.Excised) != 1 || st.Excised[0].File != table {
		t.Fatalf("Open dropped %+v, want the rows of %s", st.Excised, table)
	}
	if n.Rows() >= int64(len(rows)) {
		t.Fatalf("the tree counts %d rows of %d: none dropped", n.Rows(), len(rows))
	}
	if live, want := liveRoot(t, n), rebuiltRoot(t, n); live != want {
		t.Fatalf("the tree's root %x is not its rows' %x", live[:8], want[:8])
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if !slices.ContainsFunc(log.lines, func(l string) bool { return strings.Contains(l, "dropped the rows") && strings.Contains(l, table) }) {
		t.Fatalf("logged %q; want the dropped table named", log.lines)
	}
}

// recLogger records the Pebble log lines it is given.
type recLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *recLogger) Infof(string, ...any) {}

func (l *recLogger) Errorf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *recLogger) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// A table damaged while the node is open: Scan and Get return ErrCorrupt
// naming it, the node goes on serving what is intact, and the damage is
// logged once, not once per read.
func TestScanCorruptFile(t *testing.T) {
	dir := t.TempDir()
	rows, table := corruptionRows(t, dir)
	// No block cache, so every read goes to the file, and no compaction,
	// which would replace the file.
	cache := pebble.NewCache(0)
	defer cache.Unref()
	log := &recLogger{}
	n := openNode(t, dir, Options{Depth: 4, Pebble: &pebble.Options{Cache: cache, DisableAutomaticCompactions: true, Logger: log}})
	flip(t, table, 0.25, 0.5)
	err := n.Scan(context.Background(), n.Shape().Range, func(*engine.Row) error { return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(fmt.Sprint(err), "grovepebble: corrupt data in "+table+": ") {
		t.Fatalf("Scan = %v, want ErrCorrupt naming %s", err, table)
	}
	var bad, read int
	for i := 0; i < len(rows); i += 10 {
		r := rows[i]
		read++
		_, found, err := n.Get(context.Background(), r.Key)
		switch {
		case err == nil && found:
		case errors.Is(err, ErrCorrupt) && strings.Contains(err.Error(), table):
			bad++
		default:
			t.Fatalf("Get(%q) = %v, %v; want the row or ErrCorrupt naming %s", r.Key, found, err, table)
		}
	}
	if bad == 0 || bad == read {
		t.Fatalf("%d of %d rows unreadable; want some but not all", bad, read)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.lines) != 1 || !strings.HasPrefix(log.lines[0], "grovepebble: corrupt data in "+table+": ") {
		t.Fatalf("logged %q; want one line naming %s", log.lines, table)
	}
}

// A fatal error inside Pebble in one of the Node's calls — here a WAL write
// failing under a commit, which Pebble reports with Logger.Fatalf — is that
// call's ErrFatal, not the end of the process; the Node refuses every later
// call and closes without blocking.
func TestPebbleFatalIsAnError(t *testing.T) {
	failWAL := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})}
	n := openNode(t, t.TempDir(), Options{Depth: 4, Create: true, Pebble: &pebble.Options{FS: errorfs.Wrap(vfs.Default, failWAL)}})
	ctx := context.Background()
	if err := n.Put(ctx, []byte("before"), []byte("v"), 1); err != nil {
		t.Fatal(err)
	}
	failWAL.On()
	err := n.Put(ctx, []byte("k"), []byte("v"), 1)
	failWAL.Off()
	if !errors.Is(err, ErrFatal) || !strings.Contains(fmt.Sprint(err), "fatal commit error") {
		t.Fatalf("Put with the WAL failing = %v, want ErrFatal from the commit", err)
	}
	calls := map[string]func() error{
		"Put":   func() error { err := n.Put(ctx, []byte("k2"), []byte("v"), 2); return err },
		"Apply": func() error { _, err := n.Apply(ctx, []engine.Row{{Key: []byte("k3"), TS: 1}}); return err },
		"Get":   func() error { _, _, err := n.Get(ctx, []byte("before")); return err },
		"Scan": func() error {
			return n.Scan(ctx, token.Murmur3{}.Range(), func(*engine.Row) error { return nil })
		},
		"Root": func() error { _, err := n.Root(ctx); return err },
		"Sum":  func() error { _, err := n.Sum(ctx); return err },
		"View": func() error { _, _, err := n.View(ctx); return err },
	}
	for _, name := range slices.Sorted(maps.Keys(calls)) {
		if err := calls[name](); !errors.Is(err, ErrFatal) {
			t.Errorf("%s after a fatal error = %v, want ErrFatal", name, err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked after a fatal error")
	}
}
