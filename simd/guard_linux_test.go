package simd

import (
	"syscall"
	"testing"
)

// guarded returns a buffer of one page that is followed by a page that
// cannot be read, so that a kernel reading one byte past an input that ends
// at the end of the buffer faults.
func guarded(t *testing.T) []byte {
	t.Helper()
	page := syscall.Getpagesize()
	m, err := syscall.Mmap(-1, 0, 2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(m) })
	if err := syscall.Mprotect(m[page:], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	return m[:page:page]
}

// TestKernelsReadOnlyTheirInputs puts every input against an unreadable
// page: a two-stream kernel or a pair kernel that reads past the end of a
// message (say, a whole block where only a tail is left) crashes the test.
func TestKernelsReadOnlyTheirInputs(t *testing.T) {
	ga, gb := guarded(t), guarded(t)
	for i := range ga {
		ga[i], gb[i] = byte(i), byte(3*i)
	}
	end := len(ga)
	for _, k := range x2Kernels() {
		for n := 0; n <= 300; n++ {
			for _, m := range []int{0, 1, 63, 64, 65, 110, 300, n} {
				checkX2(t, k.fn, ga[end-n:], gb[end-m:])
			}
		}
	}
	for _, k := range kernels() {
		for _, n := range []int{1, 2, 3, 4, 5, 9} {
			src := ga[end-64*n:]
			checkKernel(t, k.fn, src, 0)
		}
	}
}
