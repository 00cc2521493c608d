package cli

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/antientropy/grove/internal/cliout"
)

func testProgram(log *[]string) *Program[string] {
	return &Program[string]{
		Name:  "prog",
		Title: "prog — a test",
		Commands: []Command[string]{
			{Name: "echo", Usage: "echo [--n N] WORD", Summary: "print WORD", Run: func(args []string, env string) (int, error) {
				fs := NewFlagSet("echo")
				n := fs.Int("n", 1, "times to print `N`")
				pos, err := Parse(fs, args, 1)
				if err != nil {
					return 0, err
				}
				*log = append(*log, "run "+env+" "+strings.Repeat(pos[0], *n))
				return ExitOK, nil
			}},
			{Name: "differ", Usage: "differ", Summary: "find a difference", Run: func([]string, string) (int, error) { return ExitDifferent, nil }},
			{Name: "fail", Usage: "fail", Summary: "fail over two lines", Run: func([]string, string) (int, error) {
				return 0, errors.New("first\nsecond")
			}},
		},
		UsageColumn: 20,
		Footer:      "\nfooter\n",
		Env: func(args []string, stdout *cliout.Writer, stderr io.Writer) ([]string, string, error) {
			if len(args) > 0 && args[0] == "--bad-global" {
				return nil, "", errors.New("bad global")
			}
			return args, "env", nil
		},
		Start: func(env string) (func() error, error) {
			*log = append(*log, "start")
			return func() error { *log = append(*log, "stop"); return nil }, nil
		},
	}
}

func TestProgramRun(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		oneLine        bool
		code           int
		stdout, stderr string
	}{
		{nil, false, ExitError, "prog — a test\n\nusage:\n  prog echo [--n N] WORD    print WORD\n", ""},
		{[]string{"help"}, false, ExitOK, "footer\n", ""},
		{[]string{"--help"}, false, ExitOK, "  prog differ               find a difference\n", ""},
		{[]string{"echo", "hi"}, false, ExitOK, "", ""},
		{[]string{"differ"}, false, ExitDifferent, "", ""},
		{[]string{"echo", "--help"}, false, ExitOK, "usage: prog echo [--n N] WORD\n\nprint WORD\n\nflags:\n  --n N   times to print N (default 1)\n", ""},
		{[]string{"echo", "-h"}, false, ExitOK, "  --n N   times to print N (default 1)\n", ""},
		{[]string{"echo"}, false, ExitError, "", "prog: echo: want 1 argument(s), got 0: []\n"},
		{[]string{"echo", "--n", "x", "hi"}, false, ExitError, "", `prog: echo: invalid value "x" for flag -n: parse error` + "\n"},
		{[]string{"fail"}, false, ExitError, "", "prog: fail: first\nsecond\n"},
		{[]string{"fail"}, true, ExitError, "", "prog: fail: first; second\n"},
		{[]string{"nope"}, false, ExitError, "", "prog: unknown command \"nope\" (run 'prog help')\n"},
		{[]string{"--bad-global", "echo"}, false, ExitError, "", "prog: bad global\n"},
	} {
		var log []string
		p := testProgram(&log)
		p.OneLineErrors = tc.oneLine
		var stdout, stderr bytes.Buffer
		code := p.Run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || stderr.String() != tc.stderr {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, stdout holding %q, stderr %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}

func TestProgramStartStop(t *testing.T) {
	var log []string
	if code := testProgram(&log).Run([]string{"echo", "hi"}, io.Discard, io.Discard); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if want := []string{"start", "run env hi", "stop"}; !slices.Equal(log, want) {
		t.Fatalf("%q, want %q", log, want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestProgramStdoutFails(t *testing.T) {
	var log []string
	var stderr bytes.Buffer
	if code := testProgram(&log).Run([]string{"help"}, failWriter{}, &stderr); code != ExitError || stderr.String() != "prog: writing to standard output: disk full\n" {
		t.Fatalf("exit %d, %q", code, stderr.String())
	}
}
