package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// HelpError is what Parse and ParseNamed return for -h or --help: it wraps
// flag.ErrHelp and carries the command's flags, for the dispatcher to list.
type HelpError struct {
	Flags *flag.FlagSet
}

func (h *HelpError) Error() string { return flag.ErrHelp.Error() }

// Unwrap returns flag.ErrHelp.
func (h *HelpError) Unwrap() error { return flag.ErrHelp }

// NewFlagSet returns a subcommand's empty flag set. It prints nothing: the
// dispatcher reports a parse error in the program's own form, and lists
// the flags for --help.
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// Parse parses flags that may stand before, between or after the
// positional arguments (grove diff A B --json), and checks that there are
// exactly positional of them. Everything after "--" is positional.
func Parse(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	var pos, rest []string
	for i, a := range args {
		if a == "--" { // everything after it is positional, even "-x"
			args, rest = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	pos = append(pos, rest...)
	if len(pos) != positional {
		return nil, fmt.Errorf("want %d argument(s), got %d: %q", positional, len(pos), pos)
	}
	return pos, nil
}

// ParseNamed parses flags and refuses positional arguments, for commands
// whose every input is named.
func ParseNamed(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (every input is a flag)", fs.Arg(0))
	}
	return nil
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // in case fs is not NewFlagSet's
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return &HelpError{Flags: fs}
	}
	return err
}

// HasFlags reports whether fs defines any flag.
func HasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// PrintFlags lists the flags of fs, one line each in name order: the flag,
// a placeholder for its value (a word in `backquotes` in its usage, else
// its type), its usage and its default.
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	type line struct{ name, usage string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if arg != "" {
			name += " " + strings.ToUpper(arg)
		}
		width = max(width, len(name))
		lines = append(lines, line{name, usage + DefaultText(f, usage)})
	})
	for _, l := range lines {
		fmt.Fprintf(w, "  %-*s   %s\n", width, l.name, l.usage)
	}
}

// DefaultText is what PrintFlags appends to a flag's usage to give its
// default: " (default X)", " (default none)" for an empty one, or nothing
// when the usage says it already: in words, as "(default ...", or by
// saying the flag is required, which no default can stand in for.
func DefaultText(f *flag.Flag, usage string) string {
	switch {
	case strings.Contains(usage, "(default") || strings.Contains(usage, "required"):
		return ""
	case f.DefValue == "":
		return " (default none)"
	}
	return " (default " + f.DefValue + ")"
}
