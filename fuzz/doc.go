// Package fuzz holds grove's Go native fuzz targets over the public API and
// their checked-in seed corpora (testdata/fuzz/<Target>/). It has no code of
// its own: everything is in the _test.go files.
//
// Each target checks a property against an independent reference, not only
// the absence of panics:
//
//   - FuzzOpenTreeFile: engine.Open of arbitrary bytes is rejected with
//     ErrCorrupt (or ErrIncompatible, or arena.ErrBudgetExceeded) and leaves
//     nothing charged, or gives a tree whose header fields, leaves and inner
//     nodes agree with the file as this package parses it, and whose Verify
//     verdict agrees with a from-scratch recomputation of every inner node.
//   - FuzzRowReader, FuzzChangeReader, FuzzRowRoundTrip: engine/jsonl
//     against a strict reference decoder of docs/FORMAT.md's rules, the
//     changes reader's own checks, and encode→decode round trips of
//     arbitrary rows.
//   - FuzzDiffBruteForce: engine.Diff and engine.CompareKeys on small trees
//     (any depths 0..8, both layouts, both partitioners, any range) against a
//     per-key multiset comparison.
//   - FuzzLayoutSlot: both layouts against a reference loop implementation,
//     and a bijection check of Slot onto [0, Slots) for small depths.
//   - FuzzBudget: arena.Budget and Region accounting against a model.
//
// Run one target with, for example:
//
//	go test -run '^$' -fuzz '^FuzzDiffBruteForce$' -fuzztime 10m -fuzzminimizetime 5s -parallel 1 ./fuzz/
//
// (Go spends up to a minute minimising each new interesting input by
// default, during which a one-worker run executes nothing new; 5s is
// plenty for inputs this small.) A failure is written to
// testdata/fuzz/<Target>/ and then runs with the seeds in go test ./fuzz/.
//
// Seed files are regenerated from the code with
//
//	GROVE_WRITE_SEEDS=1 go test -run '^TestWriteSeeds$' ./fuzz/
package fuzz
