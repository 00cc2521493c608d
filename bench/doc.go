// Package bench measures grove against the baselines it claims to beat, in
// one process, on the same inputs, and reports the comparison that
// `grove bench` prints.
//
// Run measures:
//
//   - inner levels: grove's Tree.Hash over 2^20 leaves against a pointer tree
//     with crypto/sha256, a flat slice with crypto/sha256, a flat slice with
//     gohashtree on one goroutine, and a transparency-dev/merkle compact
//     range, all fed the same leaves and checked to reach grove's root;
//   - rows: 10 M rows built into a 2^20-leaf tree (AddFrom on GOMAXPROCS
//     goroutines, in token order and in random order; and Load's single
//     reader) against the same rows' digests computed with crypto/sha256 on
//     one core, with the Go heap the build allocates and the collections it
//     causes;
//   - diff: two 2^20-leaf trees with 1, 10 and 1000 differing leaves against
//     a scan of every leaf;
//   - size: tree bytes per leaf.
//
// The rows come from a Corpus: generated from a seed, stored compactly, with
// no per-row object on the Go heap, and generated before anything is
// measured. Config.Quick runs the same measurements at small sizes, for
// tests. The same measurements are go test benchmarks at full size:
//
//	go test -run '^$' -bench . ./bench/
package bench
