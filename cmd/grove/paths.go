package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/antientropy/grove/internal/atomicfile"
)

// checkOutput refuses an output path that names one of the command's inputs
// — by file identity, so "./x", a symbolic link or a hard link to x count as
// x — or an existing directory, and proves the file can be created by
// creating (and removing) a temporary file beside it. Commands call it
// before they read or change anything, so a mistyped output costs nothing.
// The names in inputs are the flags or arguments that gave them, for the
// message.
func checkOutput(what, out string, inputs map[string]string) error {
	if st, err := os.Stat(out); err == nil {
		if st.IsDir() {
			return fmt.Errorf("%s %s: is a directory", what, out)
		}
		for name, in := range inputs {
			if in == "" {
				continue
			}
			if same, _ := sameFile(out, in); same {
				return fmt.Errorf("%s %s is the same file as %s %s: refusing to overwrite an input", what, out, name, in)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", what, out, err)
	}
	f, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return fmt.Errorf("%s: cannot write %w", what, err)
	}
	f.Abort()
	return nil
}

// checkProfiles refuses a --cpuprofile or --memprofile that names a file
// given anywhere else on the command line: an input the profile would
// overwrite.
func checkProfiles(g globals, args []string) error {
	for _, p := range []struct{ flag, path string }{{"--cpuprofile", g.cpuProfile}, {"--memprofile", g.memProfile}} {
		if p.path == "" {
			continue
		}
		st, err := os.Stat(p.path)
		if err != nil {
			continue // not there yet: it names no input
		}
		for _, a := range args {
			if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "-") {
				a = v
			}
			if ast, err := os.Stat(a); err == nil && os.SameFile(st, ast) {
				return fmt.Errorf("%s %s is the same file as the argument %q: refusing to overwrite an input", p.flag, p.path, a)
			}
		}
	}
	if g.cpuProfile != "" && g.cpuProfile == g.memProfile {
		return errors.New("--cpuprofile and --memprofile name the same file")
	}
	return nil
}

// sameFile reports whether two existing paths are one file.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
