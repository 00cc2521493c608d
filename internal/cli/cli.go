// Package cli is what the commands grove and grove-pebble share: the
// dispatcher (a table of subcommands, the help, the exit statuses), the
// parsing of a subcommand's command line, and the flags both take —
// --depth, --budget, the TLS flags and --max-message — so that the two
// cannot drift apart.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/antientropy/grove/internal/cliout"
)

// Exit statuses, the same for every command of both programs.
const (
	// ExitOK is success, and "identical" or "in sync" where a command
	// compares.
	ExitOK = 0
	// ExitDifferent is a comparison that found differences.
	ExitDifferent = 1
	// ExitError is any error: bad usage or input, or a failure.
	ExitError = 2
)

// Command is one subcommand. Run writes its output to stdout (through env)
// and returns an exit status, or an error, which makes the status
// ExitError. An error wrapping flag.ErrHelp is a request for help: exit
// ExitOK after the command's usage and, when it is a *HelpError, its flags.
type Command[E any] struct {
	Name, Usage, Summary string
	Run                  func(args []string, env E) (int, error)
}

// Program is a command of subcommands, E being what each gets besides its
// arguments (where to write, the program's global options).
type Program[E any] struct {
	// Name starts every message on stderr: "grove: diff: …".
	Name string
	// Title is the first line of the program's help.
	Title string
	// Commands is the command table, in the order the help lists it.
	Commands []Command[E]
	// UsageColumn, when positive, lists each command on one line with its
	// summary in a column this wide; when zero, the summary goes on a line
	// of its own below the usage.
	UsageColumn int
	// Footer ends the program's help, after the command list.
	Footer string
	// Env makes a run's environment from the whole command line (it may
	// take program-wide options out of args, returning the rest) and the
	// standard streams. An error from it is exit ExitError.
	Env func(args []string, stdout *cliout.Writer, stderr io.Writer) ([]string, E, error)
	// Start, if set, runs just before the command and its stop just after;
	// an error from either fails the run as the command's own would.
	Start func(env E) (stop func() error, err error)
	// OneLineErrors folds an error of several lines (errors.Join, a storage
	// engine's detail) onto one, so that it does not read as several
	// messages.
	OneLineErrors bool
}

// Run runs the command line args (without the program's name) and returns
// the exit status. A failed write to stdout makes the status ExitError,
// whatever the command found: output cut short is never success.
func (p *Program[E]) Run(args []string, stdout, stderr io.Writer) int {
	out := &cliout.Writer{W: stdout}
	code := p.dispatch(args, out, stderr)
	if out.Err() != nil {
		fmt.Fprintf(stderr, "%s: writing to standard output: %v\n", p.Name, out.Err())
		return ExitError
	}
	return code
}

func (p *Program[E]) dispatch(args []string, stdout *cliout.Writer, stderr io.Writer) int {
	args, env, err := p.Env(args, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return ExitError
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		p.Usage(stdout)
		if len(args) == 0 {
			return ExitError
		}
		return ExitOK
	}
	for _, c := range p.Commands {
		if c.Name != args[0] {
			continue
		}
		code, err := p.runCommand(c, args[1:], env)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: %s %s\n", p.Name, c.Usage)
			var h *HelpError
			if errors.As(err, &h) {
				fmt.Fprintf(stdout, "\n%s\n", c.Summary)
				if HasFlags(h.Flags) {
					fmt.Fprintln(stdout, "\nflags:")
					PrintFlags(stdout, h.Flags)
				}
			}
			return ExitOK
		}
		if err != nil {
			msg := err.Error()
			if p.OneLineErrors {
				msg = strings.ReplaceAll(msg, "\n", "; ")
			}
			fmt.Fprintf(stderr, "%s: %s: %s\n", p.Name, c.Name, msg)
			return ExitError
		}
		return code
	}
	fmt.Fprintf(stderr, "%s: unknown command %q (run '%s help')\n", p.Name, args[0], p.Name)
	return ExitError
}

func (p *Program[E]) runCommand(c Command[E], args []string, env E) (int, error) {
	if p.Start == nil {
		return c.Run(args, env)
	}
	stop, err := p.Start(env)
	if err != nil {
		return 0, err
	}
	code, err := c.Run(args, env)
	if serr := stop(); serr != nil && err == nil {
		err = serr
	}
	return code, err
}

// Usage writes the program's help: its title, every command's usage and
// summary, and the footer.
func (p *Program[E]) Usage(w io.Writer) {
	fmt.Fprintln(w, p.Title)
	fmt.Fprintln(w, "\nusage:")
	for _, c := range p.Commands {
		if p.UsageColumn > 0 {
			fmt.Fprintf(w, "  %s %-*s %s\n", p.Name, p.UsageColumn, c.Usage, c.Summary)
		} else {
			fmt.Fprintf(w, "  %s %s\n      %s\n", p.Name, c.Usage, c.Summary)
		}
	}
	fmt.Fprint(w, p.Footer)
}
