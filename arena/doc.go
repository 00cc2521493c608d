// Package arena provides memory outside the Go heap, charged against a byte
// budget.
//
// Trees of tens of megabytes each, many per process, would otherwise inflate
// the heap the garbage collector scans and paces itself against. Mapping
// them directly keeps GC cost independent of tree size, and charging every
// mapping to a shared Budget before it is made turns "the node ran out of
// memory" into an ordinary error that says how much was asked and how much
// was left.
//
// On Linux a Region is an anonymous private mapping made with MAP_NORESERVE:
// the Budget, not the kernel's overcommit accounting, is what bounds it. On
// other Unix systems it is an anonymous private mapping without that flag.
// On Windows it is a mapping backed by the paging file, made with
// github.com/edsrzf/mmap-go. Only where there is no mapping at all (Plan 9,
// wasm) does it fall back to an ordinary Go byte slice: the same API and
// accounting, but the memory lives on the GC heap.
//
// A Budget is safe for concurrent use. A Region is not: its owner must not
// Close it while another goroutine may still use Bytes.
package arena
