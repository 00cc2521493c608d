package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// built is the command, built once for every test that runs it: a build
// links all of Pebble, which takes seconds.
var built struct {
	once     sync.Once
	dir, bin string
	err      error
}

// buildCommand builds grove-pebble into a temporary directory, once.
func buildCommand(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "grove-pebble-test-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "grove-pebble")
		if out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// runBin runs the command and returns its exit status, stdout and stderr.
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("%s %q: %v", bin, args, err)
		return 0, "", ""
	}
}

// writeRows writes JSON Lines rows to a file in dir.
func writeRows(t *testing.T, dir, name string, lines []string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The command end to end: load two databases from JSON Lines, serve one in
// a child process, sync the other against it (finding, then repairing, then
// finding nothing), stop the server with SIGTERM, and dump both: the same
// rows.
func TestCommandLoadServeSyncDump(t *testing.T) {
	bin := buildCommand(t)
	dir := t.TempDir()
	var linesA, linesB []string
	for i := range 500 {
		line := fmt.Sprintf(`{"key": "user:%03d", "value": "v%d", "ts": %d}`, i, i, 1000+i)
		switch i {
		case 7: // only A has it
			linesA = append(linesA, line)
		case 8: // B holds a newer version
			linesA = append(linesA, line)
			linesB = append(linesB, fmt.Sprintf(`{"key": "user:%03d", "value": "newer", "ts": %d}`, i, 5000))
		case 9: // A deleted it later
			linesA = append(linesA, line, fmt.Sprintf(`{"key": "user:%03d", "ts": %d, "deleted": true}`, i, 5000))
			linesB = append(linesB, line)
		default:
			linesA = append(linesA, line)
			linesB = append(linesB, line)
		}
	}
	linesB = append(linesB, `{"key_hex": "00ff", "value": "binary key", "ts": 1}`) // only B
	dbA, dbB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, l := range []struct {
		db, rows string
		want     string
	}{
		{dbA, writeRows(t, dir, "a.jsonl", linesA), "501 rows from " + filepath.Join(dir, "a.jsonl") + ": 500 keys written"},
		{dbB, writeRows(t, dir, "b.jsonl", linesB), "500 rows from " + filepath.Join(dir, "b.jsonl") + ": 500 keys written"},
	} {
		code, out, errOut := runBin(t, bin, "load", "--db", l.db, "--rows", l.rows)
		if code != 0 || !strings.Contains(out, l.want) {
			t.Fatalf("load: exit %d, %q, %q; want %q", code, out, errOut, l.want)
		}
	}

	serve := exec.Command(bin, "serve", "--db", dbB, "--listen", "127.0.0.1:0")
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serveErr bytes.Buffer
	serve.Stderr = &serveErr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer serve.Process.Kill()
	lines := bufio.NewScanner(stdout)
	nextLine := func() string {
		if !lines.Scan() {
			t.Fatalf("serve ended early: %v; stderr %q", lines.Err(), serveErr.String())
		}
		return lines.Text()
	}
	first := nextLine()
	m := regexp.MustCompile(`^serving 500 rows \(depth (\d+)\) on (http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("serve's first line %q", first)
	}
	url := m[2]
	if second := nextLine(); !regexp.MustCompile(`^validation scan: 500 rows, [0-9.]+ MB in .* \([0-9]+ rows/s, [0-9.]+ MB/s, \d+ workers\)`).MatchString(second) {
		t.Fatalf("serve's second line %q", second)
	}
	// --scrub-rate auto: a pass over the node's data in three days, at
	// least 1 MiB/s.
	if third := nextLine(); third != "background scrub at 1.0 MB/s" {
		t.Fatalf("serve's third line %q", third)
	}
	repairLog := make(chan string, 8)
	go func() {
		for lines.Scan() {
			repairLog <- lines.Text()
		}
		close(repairLog)
	}()

	// The database is B's: a second process cannot open it, and is told
	// why in one line.
	if code, _, errOut := runBin(t, bin, "dump", "--db", dbB); code != 2 || !strings.HasPrefix(errOut, "grove-pebble: dump: ") ||
		!strings.Contains(errOut, "the database at "+dbB+" is in use by another process") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("dump of a served database: exit %d, %q; want 2 and one line saying it is in use by another process", code, errOut)
	}

	type syncOut struct {
		Identical                bool
		OnlyHere                 []map[string]string `json:"only_here"`
		OnlyThere                []map[string]string `json:"only_there"`
		Different                []map[string]string
		BytesSent, BytesReceived int64
		RoundTrips               int `json:"round_trips"`
		Repaired                 *struct {
			Pushed, Applied int
			PeerApplied     int `json:"peer_applied"`
			Converged       bool
		}
	}
	sync := func(args ...string) (int, syncOut) {
		t.Helper()
		code, out, errOut := runBin(t, bin, append([]string{"sync", "--db", dbA, "--peer", url, "--json", "--timeout", "20s"}, args...)...)
		var s syncOut
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("sync %q: exit %d, output %q, stderr %q: %v", args, code, out, errOut, err)
		}
		return code, s
	}
	keys := func(ks []map[string]string) []string {
		var out []string
		for _, k := range ks {
			out = append(out, k["key"]+k["key_hex"])
		}
		slices.Sort(out)
		return out
	}
	// The text output names the keys with the words of the JSON's fields.
	code, text, errOut := runBin(t, bin, "sync", "--db", dbA, "--peer", url, "--timeout", "20s")
	for _, want := range []string{`only here:  "user:007" (token `, `only there: 0x00ff (token `, `different:  "user:008" (token `, `different:  "user:009" (token `} {
		if code != 1 || !strings.Contains(text, "\n"+want) && !strings.HasPrefix(text, want) {
			t.Errorf("sync: exit %d, output %q (stderr %q) lacks a line %q", code, text, errOut, want)
		}
	}
	code, found := sync()
	if code != 1 || found.Identical || found.Repaired != nil ||
		!slices.Equal(keys(found.OnlyHere), []string{"user:007"}) ||
		!slices.Equal(keys(found.OnlyThere), []string{"00ff"}) ||
		!slices.Equal(keys(found.Different), []string{"user:008", "user:009"}) {
		t.Fatalf("sync: exit %d, %+v", code, found)
	}
	code, repaired := sync("--repair")
	if code != 1 || repaired.Repaired == nil || !repaired.Repaired.Converged ||
		repaired.Repaired.Pushed != 2 || repaired.Repaired.PeerApplied != 2 || repaired.Repaired.Applied != 2 {
		t.Fatalf("sync --repair: exit %d, %+v, repaired %+v", code, repaired, repaired.Repaired)
	}
	select {
	case l := <-repairLog:
		if !strings.Contains(l, "repair: 2 rows written, 501 rows held") {
			t.Errorf("serve's repair line %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("serve printed no line for the repair")
	}
	code, again := sync()
	if code != 0 || !again.Identical || again.RoundTrips != 1 {
		t.Fatalf("sync after repair: exit %d, %+v", code, again)
	}

	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range repairLog {
	}
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v; stderr %q", err, serveErr.String())
	}

	codeA, dumpA, errA := runBin(t, bin, "dump", "--db", dbA)
	codeB, dumpB, errB := runBin(t, bin, "dump", "--db", dbB)
	if codeA != 0 || codeB != 0 {
		t.Fatalf("dump: exit %d %q, %d %q", codeA, errA, codeB, errB)
	}
	if dumpA != dumpB {
		t.Fatalf("dumps differ after repair:\n%s\n---\n%s", dumpA, dumpB)
	}
	for _, want := range []string{
		`{"key":"user:008","value":"newer","ts":5000,"deleted":false}`,
		`{"key":"user:009","value":"","ts":5000,"deleted":true}`,
		`{"key":"user:007","value":"v7","ts":1007,"deleted":false}`,
		`{"key_hex":"00ff","value":"binary key","ts":1,"deleted":false}`,
	} {
		if !strings.Contains(dumpA, want+"\n") {
			t.Errorf("dump lacks %s", want)
		}
	}
	if n := strings.Count(dumpA, "\n"); n != 501 {
		t.Errorf("dump has %d rows, want 501", n)
	}
}

// Errors: exit status 2 and a message naming the command and what was
// wrong; a malformed rows file writes nothing.
func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	good := writeRows(t, dir, "good.jsonl", []string{`{"key": "a", "ts": 1}`})
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"load", "--db", db, "--rows", good}, &stdout, &stderr); code != exitOK {
		t.Fatalf("load: exit %d, %q", code, stderr.String())
	}
	missing := filepath.Join(dir, "missing")
	bad := writeRows(t, dir, "bad.jsonl", []string{`{"key": "a", "ts": 1}`, `{"key": "b", "ts": 2}`, `{"key": "c"`})
	notDB := filepath.Join(dir, "notdb")
	if err := os.MkdirAll(filepath.Join(notDB, "photos"), 0o755); err != nil {
		t.Fatal(err)
	}
	noDatabase := func(cmd, path, orCreate string) string {
		return "grove-pebble: " + cmd + ": grovepebble: open " + path + ": grovepebble: no database: " + path +
			" does not exist; run 'grove-pebble load --db " + path + " --rows ROWS.jsonl' to create it" + orCreate + "\n"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := "http://" + ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, ""},
		{"unknown command", []string{"frobnicate"}, `grove-pebble: unknown command "frobnicate"`},
		{"dump without --db", []string{"dump"}, "grove-pebble: dump: --db is required"},
		{"load without --rows", []string{"load", "--db", db}, "grove-pebble: load: --db and --rows are required"},
		{"load of a malformed file", []string{"load", "--db", missing, "--rows", bad}, "grove-pebble: load: " + bad + ": "},
		{"load of a missing file", []string{"load", "--db", db, "--rows", filepath.Join(dir, "nope")}, "grove-pebble: load: open "},
		{"sync without --peer", []string{"sync", "--db", db}, "grove-pebble: sync: --peer is required"},
		{"sync with a dead peer", []string{"sync", "--db", db, "--peer", closedPort, "--timeout", "5s"}, "grove-pebble: sync: "},
		{"serve with a bad depth", []string{"serve", "--db", db, "--depth", "99"}, "grove-pebble: serve: invalid value"},
		{"a positional argument", []string{"dump", "--db", db, "extra"}, `grove-pebble: dump: unexpected argument "extra"`},
		{"serve with --idle-timeout 0", []string{"serve", "--db", db, "--idle-timeout", "0"}, "grove-pebble: serve: --idle-timeout 0s: want a positive duration\n"},
		{"serve with a negative --idle-timeout", []string{"serve", "--db", db, "--idle-timeout", "-1m"}, "grove-pebble: serve: --idle-timeout -1m0s: want a positive duration\n"},
		{"serve of a missing database", []string{"serve", "--db", missing, "--listen", "127.0.0.1:0"}, noDatabase("serve", missing, ", or pass --create")},
		{"sync of a missing database", []string{"sync", "--db", missing, "--peer", closedPort, "--repair"}, noDatabase("sync", missing, ", or pass --create")},
		{"dump of a missing database", []string{"dump", "--db", missing}, noDatabase("dump", missing, "")},
		{"sync of a file", []string{"sync", "--db", good, "--peer", closedPort}, "grove-pebble: sync: grovepebble: open " + good + ": grovepebble: not a grove node: " + good + " is a file, not a database directory\n"},
		{"serve of another directory", []string{"serve", "--db", notDB, "--create"}, "grove-pebble: serve: grovepebble: open " + notDB + ": grovepebble: not a grove node: " + notDB + ` is not a Pebble database (no MANIFEST; it holds 1 entries, such as "photos")` + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Bounded, so that a command that should have refused but
			// serves instead fails the test rather than hanging it.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			if code := run(ctx, c.args, &stdout, &stderr); code != exitError || !strings.HasPrefix(stderr.String(), c.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), c.want)
			}
		})
	}
	// The malformed file named its line, and no database was made for it;
	// nor did serve, sync or dump make one at the missing path.
	stderr.Reset()
	run(context.Background(), []string{"load", "--db", missing, "--rows", bad}, &stdout, &stderr)
	if !strings.Contains(stderr.String(), "line 3") {
		t.Errorf("load error %q does not name line 3", stderr.String())
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after refusals, %s: %v; want it still absent", missing, err)
	}
	if entries, err := os.ReadDir(notDB); err != nil || len(entries) != 1 {
		t.Errorf("after a refused serve --create, %s holds %v (%v); want only photos", notDB, entries, err)
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"help"}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "grove-pebble serve") {
		t.Errorf("help: exit %d, %q", code, stdout.String())
	}
}
