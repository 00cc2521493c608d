package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/antientropy/grove/internal/atomicfile"
)

// grove runs the command in-process and returns its exit status and output.
func grove(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

type testRow struct {
	Key      string `json:"key,omitempty"`
	KeyHex   string `json:"key_hex,omitempty"`
	Value    string `json:"value"`
	TS       int64  `json:"ts"`
	Deleted  bool   `json:"deleted,omitempty"`
	identity string
}

func writeRows(t *testing.T, path string, rows []testRow) {
	t.Helper()
	var b bytes.Buffer
	for _, r := range rows {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeReplicas returns rows for A and, for B, the same rows with divergences,
// and the brute-force answer: keys only in A, only in B, and different.
func makeReplicas(n int) (a, b []testRow, onlyA, onlyB, diff []string) {
	rnd := rand.New(rand.NewPCG(1, 1))
	for i := range n {
		r := testRow{Key: fmt.Sprintf("user:%d", i), Value: fmt.Sprintf("v%d", rnd.IntN(1000)), TS: int64(1000 + i)}
		if i%97 == 0 {
			r = testRow{KeyHex: fmt.Sprintf("ff%04x", i), Value: "bin", TS: 5}
		}
		a = append(a, r)
	}
	b = slices.Clone(a)
	b[10].Value += "!" // corrupted value
	b[20].TS++         // other timestamp
	b[30].Deleted = true
	b[97].Value = "other" // a binary key that differs
	b = slices.Delete(b, 40, 41)
	b = append(b, testRow{Key: "only-b", Value: "x", TS: 1})
	onlyA = []string{"user:40"}
	onlyB = []string{"only-b"}
	diff = []string{"user:10", "user:20", "user:30", "hex:ff0061"}
	return
}

func TestBuildDiffInspect(t *testing.T) {
	dir := t.TempDir()
	a, b, _, _, _ := makeReplicas(3000)
	ra, rb := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeRows(t, ra, a)
	writeRows(t, rb, b)
	ta, ta2, tb := filepath.Join(dir, "a.tree"), filepath.Join(dir, "a2.tree"), filepath.Join(dir, "b.tree")
	for _, c := range [][]string{
		{"build", "--in", ra, "--out", ta},
		{"build", "--in", ra, "--out", ta2, "--depth", "6"},
		{"build", "--in", rb, "--out", tb, "--depth", "auto", "--budget", "64MiB"},
	} {
		if code, _, errOut := grove(t, c...); code != 0 {
			t.Fatalf("%v: exit %d: %s", c, code, errOut)
		}
	}
	code, out, _ := grove(t, "inspect", ta, "--json")
	var info inspectJSON
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("inspect: exit %d, %s", code, out)
	}
	if info.Depth != 12 || info.Rows != 3000 || info.Leaves != 4096 || info.Partitioner != "murmur3" || len(info.Root) != 64 || info.Bytes != (8191*32) {
		t.Fatalf("inspect: %+v (want depth 12 = ⌈log2 3000⌉, 3000 rows)", info)
	}
	if code, out, _ := grove(t, "inspect", ta); code != 0 || !strings.Contains(out, "rows         3000") {
		t.Fatalf("inspect text: exit %d\n%s", code, out)
	}

	// The page-blocked layout gives the same tree.
	tblk := filepath.Join(dir, "a.blocked.tree")
	if code, _, errOut := grove(t, "build", "--in", ra, "--out", tblk, "--layout", "blocked"); code != 0 {
		t.Fatalf("build --layout blocked: %s", errOut)
	}
	code, out, _ = grove(t, "inspect", tblk, "--json")
	var blk inspectJSON
	if code != 0 || json.Unmarshal([]byte(out), &blk) != nil || blk.Layout != "blocked" || blk.Root != info.Root {
		t.Fatalf("inspect blocked: %s (bfs root %s)", out, info.Root)
	}
	if code, out, _ := grove(t, "diff", ta, tblk); code != 0 || !strings.Contains(out, "identical") {
		t.Fatalf("bfs vs blocked: exit %d %s", code, out)
	}
	if code, _, errOut := grove(t, "build", "--in", ra, "--out", tblk, "--layout", "zigzag"); code != 2 || !strings.Contains(errOut, "zigzag") {
		t.Fatalf("unknown layout: exit %d %s", code, errOut)
	}

	// Same rows at different depths compare equal: the deeper tree is folded.
	if code, out, errOut := grove(t, "diff", ta, ta2); code != 0 || !strings.Contains(out, "identical (depth 6)") {
		t.Fatalf("diff of the same rows at depths 12 and 6: exit %d %s %s", code, out, errOut)
	}
	code, out, errOut := grove(t, "diff", ta, tb, "--json")
	if code != 1 {
		t.Fatalf("diff of different trees: exit %d %s", code, errOut)
	}
	var d diffJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("diff --json: %v\n%s", err, out)
	}
	if d.Identical || d.Depth != 12 || d.DifferingLeaves != 6 || len(d.Ranges) == 0 || len(d.Ranges) > 6 {
		t.Fatalf("diff --json: %+v, want 6 differing leaves at depth 12 (one per divergent key)", d)
	}
	for _, field := range []string{`"identical": false`, `"differing_leaves": 6`, `"lo": "`, `"hi": "`} {
		if !strings.Contains(out, field) {
			t.Fatalf("diff --json lacks %s:\n%s", field, out)
		}
	}
	if code, out, _ := grove(t, "diff", "--json", ta, ta); code != 0 || !strings.Contains(out, `"identical": true`) || !strings.Contains(out, `"ranges": []`) {
		t.Fatalf("diff --json identical: exit %d %s", code, out)
	}
}

// keyNames turns keys as --json prints them into sorted strings, hex keys as
// "hex:…".
func keyNames(t *testing.T, l []map[string]string) []string {
	t.Helper()
	var s []string
	for _, m := range l {
		if len(m) != 1 {
			t.Fatalf("entry %v has %d fields, want one of key/key_hex", m, len(m))
		}
		if k, ok := m["key"]; ok {
			s = append(s, k)
		} else {
			s = append(s, "hex:"+m["key_hex"])
		}
	}
	slices.Sort(s)
	return s
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	a, b, onlyA, onlyB, diff := makeReplicas(5000)
	ra, rb := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeRows(t, ra, a)
	writeRows(t, rb, b)
	for _, depth := range []string{"auto", "0", "4", "16"} {
		code, out, errOut := grove(t, "keys", ra, rb, "--json", "--depth", depth)
		if code != 1 {
			t.Fatalf("depth %s: exit %d: %s", depth, code, errOut)
		}
		var got struct {
			Identical bool                `json:"identical"`
			OnlyInA   []map[string]string `json:"only_in_a"`
			OnlyInB   []map[string]string `json:"only_in_b"`
			Different []map[string]string `json:"different"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		names := func(l []map[string]string) []string { return keyNames(t, l) }
		if got.Identical || !slices.Equal(names(got.OnlyInA), sorted(onlyA)) || !slices.Equal(names(got.OnlyInB), sorted(onlyB)) || !slices.Equal(names(got.Different), sorted(diff)) {
			t.Fatalf("depth %s: got %s\nwant only A %v, only B %v, different %v", depth, out, onlyA, onlyB, diff)
		}
	}
	if code, out, _ := grove(t, "keys", ra, ra, "--json"); code != 0 || !strings.Contains(out, `"identical": true`) {
		t.Fatalf("keys of identical files: exit %d %s", code, out)
	}
	if code, out, _ := grove(t, "keys", ra, rb); code != 1 || !strings.Contains(out, `only in A: "user:40"`) || !strings.Contains(out, "0xff0061") {
		t.Fatalf("keys text: exit %d\n%s", code, out)
	}
}

func TestToken(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"token", "--hex", "00000001"}, "-4069959284402364209\n"},
		{[]string{"token", "00000001", "--hex"}, "-4069959284402364209\n"},
	}
	for _, tc := range tests {
		if code, out, errOut := grove(t, tc.args...); code != 0 || out != tc.want {
			t.Errorf("%v: exit %d, %q %s; want %q", tc.args, code, out, errOut, tc.want)
		}
	}
	// A text key and its hex give the same token.
	_, text, _ := grove(t, "token", "user:123")
	_, hexed, _ := grove(t, "token", "--hex", "757365723a313233")
	if text != hexed || text == "" {
		t.Errorf("text %q and hex %q tokens differ", text, hexed)
	}
}

// TestErrors: every error is exit 2 with a message starting "grove:", and a
// failed build leaves no output file.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	writeRows(t, good, []testRow{{Key: "a", TS: 1}, {Key: "b", TS: 2}})
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"key\": \"a\", \"ts\": 1}\n\n{\"key\": \"b\", \"ts\": \"x\"}\n"), 0o644)
	tree := filepath.Join(dir, "good.tree")
	if code, _, errOut := grove(t, "build", "--in", good, "--out", tree); code != 0 {
		t.Fatal(errOut)
	}
	flipped := filepath.Join(dir, "flipped.tree")
	data, _ := os.ReadFile(tree)
	data[len(data)-3] ^= 1
	os.WriteFile(flipped, data, 0o644)
	garbage := filepath.Join(dir, "garbage.tree")
	os.WriteFile(garbage, []byte("not a tree"), 0o644)
	out := filepath.Join(dir, "out.tree")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"malformed line", []string{"build", "--in", bad, "--out", out}, "line 3"},
		{"no such rows file", []string{"build", "--in", filepath.Join(dir, "nope"), "--out", out}, "nope"},
		{"missing --out", []string{"build", "--in", good}, "--out"},
		{"bad depth", []string{"build", "--in", good, "--out", out, "--depth", "99"}, "depth"},
		{"bad budget", []string{"build", "--in", good, "--out", out, "--budget", "lots"}, "budget"},
		{"budget too small", []string{"build", "--in", good, "--out", out, "--depth", "20", "--budget", "1MiB"}, "budget exceeded"},
		{"keys malformed", []string{"keys", good, bad}, "line 3"},
		{"diff one arg", []string{"diff", tree}, "want 2"},
		{"diff garbage", []string{"diff", tree, garbage}, "corrupt"},
		{"diff flipped node", []string{"diff", tree, flipped}, "corrupt"},
		{"inspect missing", []string{"inspect", filepath.Join(dir, "nope.tree")}, "nope.tree"},
		{"token bad hex", []string{"token", "--hex", "zz"}, "not hex"},
		{"unknown flag", []string{"diff", "--frob", tree, tree}, "frob"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"no command", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := grove(t, tc.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, errOut)
			}
			if tc.args != nil && (!strings.HasPrefix(errOut, "grove:") || !strings.Contains(errOut, tc.want)) {
				t.Fatalf("stderr %q: want it to start with grove: and name %q", errOut, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatalf("a failed command left %s behind", out)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp") {
					t.Fatalf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

// TestProcessExitStatus runs the real binary once, to check main wires run's
// status to the process exit status.
func TestProcessExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "grove")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"key\": 1, \"ts\": 1}\n"), 0o644)
	cmd := exec.Command(bin, "build", "--in", bad, "--out", filepath.Join(dir, "x.tree"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.HasPrefix(stderr.String(), "grove: build: ") || !strings.Contains(stderr.String(), "line 1") {
		t.Fatalf("malformed row: %v, stderr %q", err, stderr.String())
	}
	out, err := exec.Command(bin, "token", "--hex", "00000001").Output()
	if err != nil || string(out) != "-4069959284402364209\n" {
		t.Fatalf("token: %v %q", err, out)
	}
}

func TestDemoSmall(t *testing.T) {
	code, out, errOut := grove(t, "demo", "--rows", "20000")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{
		"restart n4: ", " trees reopened, 0 rows read",
		"planted:    2 × a write one replica missed",
		"every replica holds exactly the rows Cassandra's rule picks, and a second round finds every range in sync.",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "repair n") != 6 {
		t.Fatalf("the demo did not repair six nodes:\n%s", out)
	}
}

// TestVerify: a good file verifies (exit 0); a flipped byte anywhere in the
// nodes is corrupt (exit 2, named); inspect says whether the file is clean.
func TestVerify(t *testing.T) {
	dir := t.TempDir()
	rows := filepath.Join(dir, "rows.jsonl")
	a, _, _, _, _ := makeReplicas(2000)
	writeRows(t, rows, a)
	tree := filepath.Join(dir, "a.tree")
	if code, _, errOut := grove(t, "build", "--in", rows, "--out", tree, "--layout", "blocked"); code != 0 {
		t.Fatal(errOut)
	}
	if code, out, errOut := grove(t, "verify", tree); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("verify good file: exit %d %s %s", code, out, errOut)
	}
	if code, out, _ := grove(t, "inspect", tree); code != 0 || !strings.Contains(out, "state        clean") || !strings.Contains(out, "layout       blocked") {
		t.Fatalf("inspect: exit %d\n%s", code, out)
	}
	data, _ := os.ReadFile(tree)
	for _, off := range []int{4096, 4096 + 77, len(data) - 1} {
		bad := append([]byte(nil), data...)
		bad[off] ^= 0x10
		p := filepath.Join(dir, "bad.tree")
		os.WriteFile(p, bad, 0o644)
		code, _, errOut := grove(t, "verify", p)
		if code != 2 || !strings.HasPrefix(errOut, "grove: verify:") || !strings.Contains(errOut, "corrupt") {
			t.Fatalf("byte %d flipped: exit %d, %q", off, code, errOut)
		}
	}
	if code, _, errOut := grove(t, "verify", rows); code != 2 || !strings.Contains(errOut, "not a grove tree file") {
		t.Fatalf("verify of a rows file: exit %d %q", code, errOut)
	}
}

// TestApply: a changes file turns a tree of rows A into exactly the tree of
// the rows after the changes; a bad line leaves the file byte for byte as
// it was.
func TestApply(t *testing.T) {
	dir := t.TempDir()
	before := []testRow{
		{Key: "a", Value: "1", TS: 10},
		{Key: "b", Value: "2", TS: 10},
		{Key: "c", Value: "3", TS: 10},
		{KeyHex: "00ff", Value: "bin", TS: 10},
	}
	after := []testRow{
		{Key: "a", Value: "1b", TS: 11},        // put over old
		{Key: "b", TS: 12, Deleted: true},      // delete
		{KeyHex: "00ff", Value: "bin", TS: 10}, // untouched
		{Key: "d", Value: "4", TS: 13},         // new key
	} // c purged
	changes := `{"op": "put", "key": "a", "value": "1b", "ts": 11, "old": {"value": "1", "ts": 10}}
{"op": "delete", "key": "b", "ts": 12, "old": {"value": "2", "ts": 10}}

{"op": "purge", "key": "c", "old": {"value": "3", "ts": 10}}
{"op": "put", "key": "d", "value": "4", "ts": 13}
`
	rowsA, rowsB := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeRows(t, rowsA, before)
	writeRows(t, rowsB, after)
	tree, want := filepath.Join(dir, "a.tree"), filepath.Join(dir, "b.tree")
	for _, c := range [][]string{{"build", "--in", rowsA, "--out", tree, "--depth", "6"}, {"build", "--in", rowsB, "--out", want, "--depth", "6"}} {
		if code, _, errOut := grove(t, c...); code != 0 {
			t.Fatal(errOut)
		}
	}
	ch := filepath.Join(dir, "changes.jsonl")
	os.WriteFile(ch, []byte(changes), 0o644)

	bad := []struct{ name, line, want string }{
		{"malformed", `{"op": "put", "key": "z"`, "line 2"},
		{"unknown op", `{"op": "upsert", "key": "z", "ts": 1}`, "upsert"},
		{"delete without old", `{"op": "delete", "key": "z", "ts": 1}`, "needs \"old\""},
		{"back in time", `{"op": "put", "key": "a", "value": "x", "ts": 5, "old": {"value": "1", "ts": 10}}`, "older than old.ts"},
		{"purge with ts", `{"op": "purge", "key": "a", "ts": 5, "old": {"ts": 10}}`, "only a key and old"},
		{"old ts overflow", `{"op": "purge", "key": "a", "old": {"ts": 99999999999999999999}}`, "old.ts"},
	}
	orig, _ := os.ReadFile(tree)
	for _, tc := range bad {
		p := filepath.Join(dir, "bad.jsonl")
		os.WriteFile(p, []byte(strings.SplitN(changes, "\n", 2)[0]+"\n"+tc.line+"\n"), 0o644)
		code, _, errOut := grove(t, "apply", tree, "--in", p)
		if code != 2 || !strings.HasPrefix(errOut, "grove: apply:") || !strings.Contains(errOut, tc.want) {
			t.Fatalf("%s: exit %d %q, want it to name %q", tc.name, code, errOut, tc.want)
		}
		if now, _ := os.ReadFile(tree); !bytes.Equal(now, orig) {
			t.Fatalf("%s: the tree file changed although the command failed", tc.name)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if atomicfile.IsTemp(e.Name()) {
				t.Fatalf("%s: left %s behind", tc.name, e.Name())
			}
		}
	}

	if code, out, errOut := grove(t, "apply", tree, "--in", ch); code != 0 || !strings.Contains(out, "4 changes applied, 4 rows") {
		t.Fatalf("apply: exit %d %s %s", code, out, errOut)
	}
	if code, out, errOut := grove(t, "diff", tree, want); code != 0 {
		t.Fatalf("applied tree differs from a build of the final rows: exit %d %s %s", code, out, errOut)
	}
	if code, _, errOut := grove(t, "verify", tree); code != 0 {
		t.Fatal(errOut)
	}
}
