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
//   - FuzzRowReader: engine/jsonl's row reader against a strict reference
//     decoder of docs/FORMAT.md's rules, line by line, rows and errors.
//   - FuzzChangeReader: engine/jsonl's changes reader on arbitrary bytes
//     fails only with ErrBadRow naming the line, and returns only changes a
//     live tree can apply.
//   - FuzzRowRoundTrip: arbitrary rows, encoded as JSON lines in any form
//     the format allows, read back exactly and on the right line.
//   - FuzzDiffBruteForce: engine.Diff and engine.CompareKeys on small trees
//     (any depths 0..8, both layouts, both partitioners, any range) against a
//     per-key multiset comparison.
//   - FuzzLayoutSlot: both layouts against a reference loop implementation,
//     and a bijection check of Slot onto [0, Slots) for small depths.
//   - FuzzBudget: arena.Budget and Region accounting against a model.
//   - FuzzResponderRequests: a repair.Responder fed a real session's Hello
//     and then arbitrary Descend, Reconcile, Push, Commit and Close
//     requests, and Hellos that open other sessions (over subtrees too,
//     with arbitrary subtree fields), fails only with the protocol's
//     sentinels, and its replica's live tree always equals a tree computed
//     from its rows.
//   - FuzzInitiatorAnswers: repair.Sync against a peer whose answers the
//     fuzzer rewrites fails only with the protocol's sentinels, keeps both
//     replicas' trees equal to their rows, and against an honest peer finds
//     the two planted keys.
//   - FuzzNodeResponderRequests: a repair.NodeResponder over four ranges fed
//     arbitrary Ranges and Batch requests fails only with the protocol's
//     sentinels and answers a batch with one answer per call. It builds its
//     four replicas for every input, so CI runs it for fewer executions.
//   - FuzzSum256x2: simd.Sum256x2 on two messages of any lengths and
//     alignments, Sum256, HashPairs and HashPairsX2 against crypto/sha256.
//
// Every execution is kept as cheap as what it checks allows: trees are a
// few KiB, the protocol targets build their two replicas once per worker
// process and put them back after an input that wrote rows, buffers and
// files are reused, and no target does work proportional to a size an
// input merely claims (a tree file's header may claim 256 GiB of nodes; it
// is refused from its first page). What is left is mostly the engine's own
// mapping and unmapping of each tree, and Go's per-execution coverage
// bookkeeping, which grows with all the code linked into this package.
//
// Run one target with, for example:
//
//	go test -run '^$' -fuzz '^FuzzDiffBruteForce$' -fuzztime 10m -parallel 2 ./fuzz/
//
// Go minimises each input that reaches new coverage, on the worker that
// found it, and counts that worker's executions only when it is done, so
// the progress line shows none meanwhile; its minimiser is quadratic in
// the input's length and, for inputs over a few hundred bytes, runs until
// -fuzzminimizetime (60s by default), when the coordinator may kill the
// worker and count none of them. This package's TestMain makes the default
// 10000x (executions, which the worker stops at by itself); give
// -fuzzminimizetime to choose otherwise, say a minute to minimise a
// failure. A failure is written to testdata/fuzz/<Target>/ and then runs
// with the seeds in go test ./fuzz/.
//
// Seed files are regenerated from the code with
//
//	GROVE_WRITE_SEEDS=1 go test -run '^TestWriteSeeds$' ./fuzz/
package fuzz
