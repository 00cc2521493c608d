package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// load checks every row before it writes one: a key over 64 KiB in a later
// batch fails it naming the file and the line (counting blank lines, as an
// editor does), and nothing of the file is written — not into an existing
// database, and no new database either. From stdin too.
func TestCommandLoadChecksEveryRowFirst(t *testing.T) {
	bin := buildCommand(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	first := writeRows(t, dir, "first.jsonl", []string{`{"key": "kept", "value": "v", "ts": 1}`})
	if code, _, errOut := runBin(t, bin, "load", "--db", db, "--rows", first); code != 0 {
		t.Fatalf("load: exit %d, %q", code, errOut)
	}
	_, before, _ := runBin(t, bin, "dump", "--db", db)

	var lines []string
	for i := range 6 {
		lines = append(lines, fmt.Sprintf(`{"key": "k%d", "value": "v", "ts": 2}`, i))
	}
	// Line 7 is blank and line 8 holds the bad row: with --batch-rows 2 it
	// is the first row of the fourth batch, "row 0" to the batch.
	lines = append(lines, "", fmt.Sprintf(`{"key": %q, "ts": 3}`, strings.Repeat("x", 64<<10+1)))
	lines = append(lines, `{"key": "after", "ts": 4}`)
	bad := writeRows(t, dir, "bad.jsonl", lines)
	badText, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		db    string
		stdin bool
	}{
		{"a file into an existing database", db, false},
		{"a file into a new database", filepath.Join(dir, "new"), false},
		{"stdin into an existing database", db, true},
		{"stdin into a new database", filepath.Join(dir, "new-stdin"), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, name := bad, bad
			if c.stdin {
				rows, name = "-", "stdin"
			}
			cmd := exec.Command(bin, "load", "--db", c.db, "--rows", rows, "--batch-rows", "2")
			cmd.Stdin = bytes.NewReader(badText)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			errOut := stderr.String()
			if !errors.As(err, &exit) || exit.ExitCode() != 2 ||
				!strings.HasPrefix(errOut, "grove-pebble: load: "+name+": ") || !strings.Contains(errOut, "line 8: ") ||
				!strings.Contains(errOut, "65537") || !strings.HasSuffix(errOut, "(nothing written)\n") || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("load: %v, stdout %q, stderr %q; want exit 2 and one line naming %s, line 8, the key's size, and that nothing was written", err, stdout.String(), errOut, name)
			}
			if c.db == db {
				if _, after, _ := runBin(t, bin, "dump", "--db", db); after != before {
					t.Fatalf("the database changed:\nbefore %q\nafter  %q", before, after)
				}
			} else if _, err := os.Stat(c.db); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s after a refused load: %v; want no database made", c.db, err)
			}
		})
	}

	// The same rows without the bad one load whole, from stdin as from a
	// file: the first pass leaves the writing pass every row.
	good := append(lines[:7:7], lines[8])
	cmd := exec.Command(bin, "load", "--db", filepath.Join(dir, "from-stdin"), "--rows", "-", "--batch-rows", "2")
	cmd.Stdin = strings.NewReader(strings.Join(good, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "loaded 7 rows from stdin: 7 keys written") {
		t.Fatalf("load from stdin: %v, %q", err, out)
	}
}

// quiet keeps the test's own Pebble from logging its WAL replay.
type quiet struct{}

func (quiet) Infof(string, ...any) {}

func (quiet) Errorf(string, ...any) {}

func (quiet) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// damage writes rows into a new database at db with the command, flushes
// them into an sstable with Pebble itself, and inverts the last bytes of
// that table: its footer, without which the table cannot be read at all —
// damaged data blocks a node of one range gets past, dropping their rows
// for a repair to restore (grovepebble's TestOpenDropsDamagedTable). It
// returns the table's path.
func damage(t *testing.T, bin, db string) string {
	t.Helper()
	var lines []string
	for i := range 3000 {
		lines = append(lines, fmt.Sprintf(`{"key": "key:%05d", "value": "value %d of a row", "ts": 1}`, i, i))
	}
	rows := writeRows(t, t.TempDir(), "rows.jsonl", lines)
	if code, _, errOut := runBin(t, bin, "load", "--db", db, "--rows", rows); code != 0 {
		t.Fatalf("load: exit %d, %q", code, errOut)
	}
	pdb, err := pebble.Open(db, &pebble.Options{ErrorIfNotExists: true, Logger: quiet{}, Merger: grovepebble.Merger})
	if err != nil {
		t.Fatal(err)
	}
	if err := pdb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
	tables, err := filepath.Glob(filepath.Join(db, "*.sst"))
	if err != nil || len(tables) != 1 {
		t.Fatalf("tables %v, %v; want one", tables, err)
	}
	data, err := os.ReadFile(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) - len(data)/100 - 1; i < len(data); i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(tables[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	return tables[0]
}

// A damaged sstable is an error like any other: exit 2 and one line naming
// the file — not Pebble's exit 1 (which sync would mean as "differences
// repaired") after a stack trace. In this process and in a real one, whose
// stderr also holds anything Pebble logs.
func TestCommandCorruptDatabase(t *testing.T) {
	bin := buildCommand(t)
	db := filepath.Join(t.TempDir(), "db")
	table := damage(t, bin, db)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPeer := "http://" + ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{
		{"dump", "--db", db},
		{"serve", "--db", db, "--listen", "127.0.0.1:0"},
		{"sync", "--db", db, "--peer", deadPeer, "--repair"},
		{"sync", "--db", db, "--peer", deadPeer, "--json"},
	} {
		want := "grove-pebble: " + args[0] + ": grovepebble: open " + db + ": grovepebble: corrupt data in " + table + ": pebble: "
		check := func(how string, code int, stdout, stderr string) {
			t.Helper()
			if code != exitError || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
				t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want exit 2, no output, and one line starting %q", how, args, code, stdout, stderr, want)
			}
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		check("run", code, stdout.String(), stderr.String())
		code, out, errOut := runBin(t, bin, args...)
		check("the command", code, out, errOut)
	}
}

// help and the README name sync's findings with the words its output uses
// — "only here", "only there", and only_here/only_there in JSON — and not
// the A/B names the two files of grove keys have.
func TestSyncVocabulary(t *testing.T) {
	var help, stderr bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &help, &stderr); code != exitOK {
		t.Fatalf("help: exit %d, %q", code, stderr.String())
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []struct {
		name, text  string
		want, avoid []string
	}{
		{"help", help.String(), []string{"only here", "only there", "different"}, []string{"only in a", "only in b", "only_in_"}},
		{"README.md", string(readme), []string{"only here", "only there", "`only_here`", "`only_there`"}, []string{"only in a", "only in b", "only_in_"}},
	} {
		lower := strings.ToLower(doc.text)
		for _, w := range doc.want {
			if !strings.Contains(doc.text, w) {
				t.Errorf("%s does not say %q", doc.name, w)
			}
		}
		for _, w := range doc.avoid {
			if strings.Contains(lower, w) {
				t.Errorf("%s says %q", doc.name, w)
			}
		}
	}
}

// TestStdoutWriteError: a failed write to stdout is exit 2, naming it.
func TestStdoutWriteError(t *testing.T) {
	var errOut bytes.Buffer
	code := run(context.Background(), []string{"help"}, failWriter{}, &errOut)
	if code != exitError || !strings.Contains(errOut.String(), "writing to standard output") {
		t.Fatalf("help to a failing stdout: exit %d, %q", code, errOut.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }
