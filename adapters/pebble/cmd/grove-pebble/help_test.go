package main

import (
	"context"
	"strings"
	"testing"

	"github.com/antientropy/grove/internal/cli/clitest"
	"github.com/antientropy/grove/internal/cliout"
)

// TestHelp: every command answers --help and -h with exit 0 and a list of
// all its flags, each with its usage and default.
func TestHelp(t *testing.T) {
	ctx := context.Background()
	clitest.CheckHelp(t, program(ctx), &env{ctx: ctx, stdout: &cliout.Writer{}}, []string{"load", "serve", "sync", "dump", "inspect", "verify", "repair", "scrub", "cleanup", "bench"})
}

// TestDepthFlag: --depth takes what grove's does (cli.Depth) but from 1:
// grovepebble.Options reads Depth 0 as auto, so 0 would quietly build an
// auto-sized tree instead of the one-leaf tree grove's --depth 0 means.
func TestDepthFlag(t *testing.T) {
	ctx := context.Background()
	e := &env{ctx: ctx, stdout: &cliout.Writer{}}
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
		for _, ok := range []string{"1", "20", "32", "auto"} {
			if err := f.Value.Set(ok); err != nil || f.Value.String() != ok {
				t.Errorf("%s --depth %s: %v, reads back %q", c.Name, ok, err, f.Value.String())
			}
		}
		for _, bad := range []string{"0", "-1", "33", "x", ""} {
			if err := f.Value.Set(bad); err == nil || !strings.Contains(err.Error(), "want 1..32 or auto") {
				t.Errorf("%s --depth %q: %v, want refused", c.Name, bad, err)
			}
		}
	}
	if n != 2 { // serve, sync
		t.Fatalf("%d commands take --depth, want 2", n)
	}
	var stdout, stderr strings.Builder
	code := run(ctx, []string{"serve", "--db", t.TempDir(), "--depth", "0"}, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), `grove-pebble: serve: invalid value "0" for flag -depth: depth "0": want 1..32 or auto`) {
		t.Fatalf("serve --depth 0: exit %d, %q", code, stderr.String())
	}
}
