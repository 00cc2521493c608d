package main

import (
	"io"
	"strings"
	"testing"

	"github.com/antientropy/grove/internal/cli/clitest"
)

// TestHelp: every command answers --help and -h with exit 0 and a list of
// all its flags, each with its usage and default.
func TestHelp(t *testing.T) {
	clitest.CheckHelp(t, program(), &env{stdout: io.Discard, stderr: io.Discard}, []string{
		"build", "diff", "keys", "token", "inspect", "apply", "verify", "serve", "sync", "cert", "demo", "bench",
	})
}

// TestDepthFlag: every grove command with --depth takes the engine's
// depths, 0 (one leaf) to 32, and auto, and refuses the rest saying so.
// (grove-pebble's start at 1: its TestDepthFlag says why.)
func TestDepthFlag(t *testing.T) {
	e := &env{stdout: io.Discard, stderr: io.Discard}
	n := 0
	for _, c := range commands() {
		f := clitest.Flags(t, c, e).Lookup("depth")
		if f == nil {
			continue
		}
		n++
		if f.DefValue != "auto" {
			t.Errorf("%s --depth defaults to %q, want auto", c.Name, f.DefValue)
		}
		for _, ok := range []string{"0", "1", "20", "32", "auto"} {
			if err := f.Value.Set(ok); err != nil || f.Value.String() != ok {
				t.Errorf("%s --depth %s: %v, reads back %q", c.Name, ok, err, f.Value.String())
			}
		}
		for _, bad := range []string{"-1", "33", "x", ""} {
			if err := f.Value.Set(bad); err == nil || !strings.Contains(err.Error(), "want 0..32 or auto") {
				t.Errorf("%s --depth %q: %v, want refused", c.Name, bad, err)
			}
		}
	}
	if n != 4 { // build, keys, serve, sync
		t.Fatalf("%d commands take --depth, want 4", n)
	}
	code, _, errOut := grove(t, "build", "--in", "x", "--out", "y", "--depth", "33")
	if code != exitError || !strings.Contains(errOut, `grove: build: invalid value "33" for flag -depth: depth "33": want 0..32 or auto`) {
		t.Fatalf("build --depth 33: exit %d, %q", code, errOut)
	}
}
