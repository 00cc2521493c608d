package arena

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/antientropy/grove/internal/invariants"
)

// hookMap replaces the OS mapping for one test and counts the calls.
func hookMap(t *testing.T, fn func(int) ([]byte, error)) *int {
	t.Helper()
	calls := new(int)
	orig := mapMemory
	mapMemory = func(n int) ([]byte, error) { *calls++; return fn(n) }
	t.Cleanup(func() { mapMemory = orig })
	return calls
}

func TestMapChargesPagesAndZeroes(t *testing.T) {
	page := os.Getpagesize()
	tests := []struct {
		size, reserved int
	}{
		{1, page},
		{page - 1, page},
		{page, page},
		{page + 1, 2 * page},
		{3*page + 5, 4 * page},
		{1 << 20, max(1<<20, page)},
	}
	b := NewBudget(1 << 30)
	// A region held open throughout, so a double release would show as
	// Used dropping below its reservation.
	anchor, err := Map(b, page)
	if err != nil {
		t.Fatal(err)
	}
	defer anchor.Close()
	base := b.Used()
	for _, tt := range tests {
		r, err := Map(b, tt.size)
		if err != nil {
			t.Fatalf("Map(%d): %v", tt.size, err)
		}
		if r.Len() != tt.size || r.Reserved() != int64(tt.reserved) {
			t.Fatalf("Map(%d): Len %d Reserved %d, want %d %d", tt.size, r.Len(), r.Reserved(), tt.size, tt.reserved)
		}
		if got := b.Used() - base; got != int64(tt.reserved) {
			t.Fatalf("Map(%d): budget charged %d, want %d", tt.size, got, tt.reserved)
		}
		mem := r.Bytes()
		if len(mem) != tt.size || cap(mem) != tt.size {
			t.Fatalf("Map(%d): len %d cap %d, want both %d", tt.size, len(mem), cap(mem), tt.size)
		}
		for i, c := range mem {
			if c != 0 {
				t.Fatalf("Map(%d): byte %d = %#x, want zero", tt.size, i, c)
			}
		}
		for i := range mem {
			mem[i] = byte(i*7 + 1)
		}
		for i, c := range r.Bytes() {
			if c != byte(i*7+1) {
				t.Fatalf("Map(%d): byte %d reads %#x after write", tt.size, i, c)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if b.Used() != base {
			t.Fatalf("after Close: Used %d, want %d", b.Used(), base)
		}
		if r.Len() != 0 || r.Reserved() != 0 {
			t.Fatalf("after Close: Len %d Reserved %d, want 0 0", r.Len(), r.Reserved())
		}
		if invariants.Enabled {
			mustPanic(t, "Bytes after Close", func() { r.Bytes() })
			mustPanic(t, "a second Close", func() { r.Close() })
		} else {
			if r.Bytes() != nil {
				t.Fatal("after Close: Bytes is not nil")
			}
			if err := r.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		}
		if b.Used() != base {
			t.Fatalf("after second Close: Used %d, want %d (double release)", b.Used(), base)
		}
	}
	if p := b.Peak(); p < base+int64(max(1<<20, page)) {
		t.Fatalf("Peak %d lower than the largest region held", p)
	}
}

func TestMapRegionsAreDistinct(t *testing.T) {
	b := NewBudget(1 << 20)
	r1, err := Map(b, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := Map(b, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	r1.Bytes()[0] = 0xAA
	if r2.Bytes()[0] != 0 {
		t.Fatal("write to one region visible in another")
	}
}

func TestMapThatDoesNotFitDoesNotMap(t *testing.T) {
	page := os.Getpagesize()
	b := NewBudget(int64(2*page + page/2))
	held, err := Map(b, page)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	calls := hookMap(t, osMap)
	// With 1.5 pages left, page+1 bytes would fit if Map charged the
	// requested size; it must charge the 2 pages it would really map.
	for _, size := range []int{page + 1, 2 * page, 10 * page, 1 << 30} {
		r, err := Map(b, size)
		if !errors.Is(err, ErrBudgetExceeded) || r != nil {
			t.Fatalf("Map(%d) = %v, %v; want ErrBudgetExceeded", size, r, err)
		}
	}
	if *calls != 0 {
		t.Fatalf("OS mapping called %d times for requests that did not fit", *calls)
	}
	if b.Used() != int64(page) {
		t.Fatalf("Used %d, want %d: a refused Map changed the budget", b.Used(), page)
	}
}

func TestMapInvalid(t *testing.T) {
	calls := hookMap(t, osMap)
	if _, err := Map(nil, 4096); !errors.Is(err, ErrNilBudget) {
		t.Fatalf("Map(nil, 4096): %v, want ErrNilBudget", err)
	}
	b := NewBudget(math.MaxInt64)
	for _, size := range []int{0, -1, math.MinInt, math.MaxInt, math.MaxInt - 1} {
		if _, err := Map(b, size); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("Map(%d): %v, want ErrInvalidSize", size, err)
		}
	}
	if *calls != 0 || b.Used() != 0 {
		t.Fatalf("invalid requests mapped %d times, charged %d", *calls, b.Used())
	}
}

// errInjected stands in for an OS error in tests that replace the mapping.
var errInjected = errors.New("injected OS error")

func TestMapOSFailureReleases(t *testing.T) {
	hookMap(t, func(int) ([]byte, error) { return nil, errInjected })
	b := NewBudget(1 << 30)
	r, err := Map(b, 64<<20)
	if r != nil || !errors.Is(err, ErrMap) || !errors.Is(err, errInjected) {
		t.Fatalf("Map = %v, %v; want ErrMap wrapping the OS error", r, err)
	}
	if !strings.Contains(err.Error(), "64.0 MiB (67108864 B)") {
		t.Fatalf("error %q does not name the size", err)
	}
	if b.Used() != 0 {
		t.Fatalf("Used %d after failed map, want 0", b.Used())
	}
}

func TestCloseUnmapFailureKeepsRegion(t *testing.T) {
	b := NewBudget(1 << 20)
	r, err := Map(b, 100)
	if err != nil {
		t.Fatal(err)
	}
	orig := unmapMemory
	unmapMemory = func([]byte) error { return errInjected }
	err = r.Close()
	unmapMemory = orig
	if !errors.Is(err, ErrMap) || !errors.Is(err, errInjected) {
		t.Fatalf("Close = %v, want ErrMap wrapping the OS error", err)
	}
	if r.Bytes() == nil || b.Used() != r.Reserved() {
		t.Fatal("failed unmap dropped the region or its reservation")
	}
	if err := r.Close(); err != nil || b.Used() != 0 {
		t.Fatalf("retried Close = %v, Used %d", err, b.Used())
	}
}

func TestAdviseHugePages(t *testing.T) {
	b := NewBudget(64 << 20)
	for _, size := range []int{4096, HugePageSize, 8 << 20} {
		r, err := Map(b, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AdviseHugePages(); err != nil {
			t.Fatalf("%d B: %v", size, err)
		}
		mem := r.Bytes()
		mem[0], mem[len(mem)-1] = 1, 2 // still ordinary, writable memory
		if mem[0] != 1 || mem[len(mem)-1] != 2 {
			t.Fatal("advised region lost a write")
		}
		r.Close()
		if err := r.AdviseHugePages(); err != nil {
			t.Fatalf("after Close: %v", err)
		}
	}
}
