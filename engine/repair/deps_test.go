package repair

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestNoStoreDependency keeps the protocol free of the demo store: a storage
// node that links package repair must not link package rowstore (or the
// JSONL reader it uses) with it. rowstore.Replica wraps the store from its
// own side.
func TestNoStoreDependency(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gotool, "list", "-deps", ".").Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/antientropy/grove/engine/repair" {
		t.Fatalf("go list -deps . did not end with this package: %q", deps)
	}
	for _, pkg := range deps {
		switch pkg {
		case "github.com/antientropy/grove/engine/rowstore", "github.com/antientropy/grove/engine/jsonl":
			t.Errorf("package repair depends on %s", pkg)
		}
	}
}
