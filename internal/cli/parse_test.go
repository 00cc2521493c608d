package cli

import (
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		n    int
		pos  []string
		json bool
		err  string
	}{
		{[]string{"a", "b"}, 2, []string{"a", "b"}, false, ""},
		{[]string{"a", "--json", "b"}, 2, []string{"a", "b"}, true, ""},
		{[]string{"--json", "a", "b"}, 2, []string{"a", "b"}, true, ""},
		{[]string{"a", "--", "--json"}, 2, []string{"a", "--json"}, false, ""},
		{[]string{"a"}, 2, nil, false, `want 2 argument(s), got 1: ["a"]`},
		{[]string{"a", "b", "c"}, 2, nil, false, "want 2 argument(s), got 3"},
		{[]string{"--nope"}, 0, nil, false, "flag provided but not defined: -nope"},
	} {
		fs := NewFlagSet("t")
		asJSON := fs.Bool("json", false, "")
		pos, err := Parse(fs, tc.args, tc.n)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(pos, tc.pos) || *asJSON != tc.json {
			t.Errorf("%q: %q %v %v, want %q %v", tc.args, pos, *asJSON, err, tc.pos, tc.json)
		}
	}
}

func TestParseNamed(t *testing.T) {
	fs := NewFlagSet("t")
	fs.String("db", "", "")
	if err := ParseNamed(fs, []string{"--db", "x"}); err != nil {
		t.Fatal(err)
	}
	fs = NewFlagSet("t")
	fs.String("db", "", "")
	err := ParseNamed(fs, []string{"--db", "x", "stray"})
	if err == nil || err.Error() != `unexpected argument "stray" (every input is a flag)` {
		t.Fatalf("%v", err)
	}
}

func TestHelpError(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		fs := NewFlagSet("t")
		_, err := Parse(fs, []string{"a", arg}, 1)
		var h *HelpError
		if !errors.Is(err, flag.ErrHelp) || !errors.As(err, &h) || h.Flags != fs {
			t.Errorf("%s: %v, want a HelpError carrying the flag set", arg, err)
		}
		if err := ParseNamed(NewFlagSet("t"), []string{arg}); !errors.As(err, &h) {
			t.Errorf("ParseNamed %s: %v", arg, err)
		}
	}
}

func TestPrintFlags(t *testing.T) {
	fs := NewFlagSet("t")
	fs.String("out", "", "tree `FILE` to write (required)")
	fs.Bool("json", false, "print JSON")
	fs.Int("days", 0, "days valid (default 3650 for ca)")
	AddBudget(fs, "1GiB", "memory (a `SIZE`)")
	AddDepth(fs, 0)
	fs.String("name", "", "a name")
	var b strings.Builder
	PrintFlags(&b, fs)
	want := `  --budget SIZE   memory (a SIZE) (default 1GiB)
  --days INT      days valid (default 3650 for ca)
  --depth N       tree depth N, 0..32, or auto (sized for the rows and the budget) (default auto)
  --json          print JSON (default false)
  --name STRING   a name (default none)
  --out FILE      tree FILE to write (required)
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
