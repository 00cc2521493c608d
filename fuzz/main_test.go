package fuzz

import (
	"flag"
	"os"
	"testing"
)

// defaultMinimize replaces go test's default -fuzzminimizetime of 60s for
// this package's targets; an explicit -fuzzminimizetime wins.
//
// Go minimises every input that reaches new coverage, on the worker that
// found it, and the coordinator counts that worker's executions only when
// the minimisation returns: meanwhile the progress line shows none. The
// byte minimiser tries every subset of the input's bytes, which is
// quadratic, so for any input over a few hundred bytes (a tree file is at
// least 4 KiB) it never finishes and stops only at the limit. A time limit
// is applied twice, by the coordinator and by the worker; when the
// coordinator's runs out first it kills the worker, counts none of the
// executions it made, and starts a new worker process. With the default
// 60s, that was the "stalls" of 20–60 s without executions, and runs that
// reported a small fraction of what they executed. A count is applied by
// the worker alone, which then returns normally. 10000 executions finish
// the minimisation of most inputs of a hundred bytes or so (a 4 KiB one
// gets its tail cut and single bytes dropped) in one to ten seconds; 1000
// left FuzzBudget's corpus long and every later execution slower.
const defaultMinimize = "10000x"

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.fuzzminimizetime" {
			explicit = true
		}
	})
	if !explicit {
		if err := flag.Set("test.fuzzminimizetime", defaultMinimize); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
