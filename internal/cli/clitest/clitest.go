// Package clitest checks a cli.Program's help from the tests of the
// commands that use it, grove's and grove-pebble's alike.
package clitest

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"

	"github.com/antientropy/grove/internal/cli"
)

// Flags returns the flags command c defines, by running it with --help,
// which every command answers with a *cli.HelpError before doing anything
// else.
func Flags[E any](t testing.TB, c cli.Command[E], env E) *flag.FlagSet {
	t.Helper()
	_, err := c.Run([]string{"--help"}, env)
	var h *cli.HelpError
	if !errors.As(err, &h) {
		t.Fatalf("%s --help: %v, want a *cli.HelpError carrying its flags", c.Name, err)
	}
	return h.Flags
}

// CheckHelp checks that p has exactly the commands names, and that for
// each, "CMD --help" and "CMD -h" exit 0 with nothing on stderr, print the
// usage line, and list every flag the command defines on a line of its
// own with its usage and its default. env is what the commands are run
// with to learn their flags.
func CheckHelp[E any](t *testing.T, p *cli.Program[E], env E, names []string) {
	t.Helper()
	var got []string
	for _, c := range p.Commands {
		got = append(got, c.Name)
	}
	if !slices.Equal(got, names) {
		t.Fatalf("commands %q, want %q: a new command needs its help checked too", got, names)
	}
	for _, c := range p.Commands {
		fs := Flags(t, c, env)
		for _, arg := range []string{"--help", "-h"} {
			t.Run(c.Name+" "+arg, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if code := p.Run([]string{c.Name, arg}, &stdout, &stderr); code != cli.ExitOK || stderr.Len() > 0 {
					t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr.String())
				}
				help := stdout.String()
				if want := "usage: " + p.Name + " " + c.Usage + "\n"; !strings.HasPrefix(help, want) {
					t.Fatalf("help starts %q, want %q", help[:min(len(help), len(want))], want)
				}
				fs.VisitAll(func(f *flag.Flag) { checkFlag(t, help, f) })
			})
		}
	}
}

// checkFlag finds f's line in help and checks it gives the usage and the
// default.
func checkFlag(t *testing.T, help string, f *flag.Flag) {
	t.Helper()
	var line string
	for l := range strings.SplitSeq(help, "\n") {
		if strings.HasPrefix(l, "  --"+f.Name+" ") {
			line = l
			break
		}
	}
	if line == "" {
		t.Errorf("--%s: not listed in\n%s", f.Name, help)
		return
	}
	_, usage := flag.UnquoteUsage(f)
	if !strings.Contains(line, usage) {
		t.Errorf("--%s: line %q lacks its usage %q", f.Name, line, usage)
	}
	// A usage may say the default in words, or that the flag is required;
	// otherwise the default is the flag's own.
	want := "(default " + f.DefValue + ")"
	if f.DefValue == "" {
		want = "(default none)"
	}
	if !strings.Contains(usage, "(default") && !strings.Contains(usage, "required") && !strings.HasSuffix(line, want) {
		t.Errorf("--%s: line %q does not end with its default %s", f.Name, line, want)
	}
}
