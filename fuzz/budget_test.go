package fuzz

import (
	"errors"
	"math"
	"os"
	"testing"

	"github.com/antientropy/grove/arena"
)

// Budget operations, one byte each (mod budgetOps), followed by their
// arguments.
const (
	opReserve     = iota // size selector
	opRelease            // reservation selector, amount selector
	opMap                // size selector
	opClose              // region selector
	opNoopRelease        // Release(0) or a negative amount
	opOverRelease        // Release more than is in use, only when nothing is outstanding
	opTouch              // region selector: write its first and last bytes
	budgetOps
)

// FuzzBudget runs a sequence of reservations, releases, mappings and closes
// on one arena.Budget and checks after every step that it agrees with a
// model: Used is the sum of the outstanding reservations and the Reserved of
// the open regions, never above Limit; Available is Limit − Used; Peak is the
// model's high-water mark; a reservation or mapping fails with
// ErrBudgetExceeded exactly when it would not fit (the page-rounded size, for
// Map), with ErrInvalidSize for sizes that make no sense, and a failure
// changes nothing. Closing everything at the end leaves Used at zero.
func FuzzBudget(f *testing.F) {
	page := int64(os.Getpagesize())
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &input{b: data}
		var limit int64
		switch sel := in.byte(); sel % 8 {
		case 0:
			limit = 0
		case 1:
			limit = -int64(in.u16()) - 1
		case 2:
			limit = math.MaxInt64
		case 3:
			limit = math.MaxInt64 - int64(in.u16())
		default:
			limit = int64(in.u16()) * 16 // up to 1 MiB
		}
		b := arena.NewBudget(limit)
		wantLimit := max(limit, 0)

		var (
			used, peak int64
			reserved   []int64 // outstanding reservations, in bytes
			regions    []*arena.Region
		)
		check := func(step int, what string) {
			t.Helper()
			if b.Limit() != wantLimit {
				t.Fatalf("step %d (%s): Limit() = %d, want %d", step, what, b.Limit(), wantLimit)
			}
			if b.Used() != used {
				t.Fatalf("step %d (%s): Used() = %d, model %d", step, what, b.Used(), used)
			}
			if b.Used() > b.Limit() || b.Used() < 0 {
				t.Fatalf("step %d (%s): Used() = %d, Limit() = %d", step, what, b.Used(), b.Limit())
			}
			if b.Available() != b.Limit()-b.Used() {
				t.Fatalf("step %d (%s): Available() = %d, Limit()-Used() = %d", step, what, b.Available(), b.Limit()-b.Used())
			}
			if b.Peak() != peak || b.Peak() < b.Used() {
				t.Fatalf("step %d (%s): Peak() = %d, model %d, Used() %d", step, what, b.Peak(), peak, b.Used())
			}
			sum := int64(0)
			for _, n := range reserved {
				sum += n
			}
			for _, r := range regions {
				sum += r.Reserved()
			}
			if sum != used {
				t.Fatalf("step %d (%s): reservations and regions add up to %d, Used() = %d", step, what, sum, b.Used())
			}
			if b.String() == "" {
				t.Fatalf("empty String()")
			}
		}
		// size picks a size: small, around what is left, or extreme.
		size := func() int64 {
			left := wantLimit - used
			switch sel := in.byte(); sel % 10 {
			case 0:
				return 0
			case 1:
				return left
			case 2:
				if left == math.MaxInt64 {
					return left
				}
				return left + 1
			case 3:
				return max(left-int64(in.byte()), 0)
			case 4:
				return -int64(in.byte()) - 1
			case 5:
				return math.MaxInt64 - int64(in.byte())
			case 6:
				return page*int64(in.byte()%16) + int64(in.byte()%3) - 1
			default:
				return int64(in.u16())
			}
		}

		defer func() {
			for _, r := range regions {
				r.Close()
			}
		}()
		for step := 0; !in.empty() && step < 64; step++ {
			switch op := in.byte() % budgetOps; op {
			case opReserve:
				n := size()
				err := b.Reserve(n)
				switch {
				case n < 0:
					if !errors.Is(err, arena.ErrInvalidSize) {
						t.Fatalf("step %d: Reserve(%d) = %v, want ErrInvalidSize", step, n, err)
					}
				case n > wantLimit-used:
					if !errors.Is(err, arena.ErrBudgetExceeded) {
						t.Fatalf("step %d: Reserve(%d) with %d left = %v, want ErrBudgetExceeded", step, n, wantLimit-used, err)
					}
				default:
					if err != nil {
						t.Fatalf("step %d: Reserve(%d) with %d left = %v", step, n, wantLimit-used, err)
					}
					used += n
					peak = max(peak, used)
					if n > 0 {
						reserved = append(reserved, n)
					}
				}
				check(step, "reserve")
			case opRelease:
				if len(reserved) == 0 {
					continue
				}
				i := int(in.byte()) % len(reserved)
				n := reserved[i]
				if sel := in.byte(); sel%4 == 0 && n > 1 {
					n = 1 + int64(in.u64()%uint64(n-1)) // part of it
				}
				b.Release(n)
				used -= n
				if reserved[i] -= n; reserved[i] == 0 {
					reserved = append(reserved[:i], reserved[i+1:]...)
				}
				check(step, "release")
			case opMap:
				n := size()
				var sz int
				if n > math.MaxInt || n < math.MinInt {
					continue
				}
				sz = int(n)
				r, err := arena.Map(b, sz)
				rounded := int64(-1)
				if sz > 0 && int64(sz) <= math.MaxInt64-(page-1) {
					rounded = (int64(sz) + page - 1) / page * page
				}
				switch {
				case rounded < 0:
					if !errors.Is(err, arena.ErrInvalidSize) {
						t.Fatalf("step %d: Map(%d) = %v, want ErrInvalidSize", step, sz, err)
					}
				case rounded > wantLimit-used:
					if !errors.Is(err, arena.ErrBudgetExceeded) {
						t.Fatalf("step %d: Map(%d) (%d rounded) with %d left = %v, want ErrBudgetExceeded", step, sz, rounded, wantLimit-used, err)
					}
				case err != nil:
					// The OS may refuse an enormous mapping; it must say so
					// and give the reservation back. The reservation was
					// held for a moment, so Peak may or may not count it.
					if !errors.Is(err, arena.ErrMap) || rounded < 1<<40 {
						t.Fatalf("step %d: Map(%d) with %d left = %v", step, sz, wantLimit-used, err)
					}
					if p := b.Peak(); p != peak && p != max(peak, used+rounded) {
						t.Fatalf("step %d: failed Map(%d): Peak() = %d, want %d or %d", step, sz, p, peak, used+rounded)
					}
					peak = b.Peak()
				default:
					if r.Len() != sz || r.Reserved() != rounded || len(r.Bytes()) != sz || cap(r.Bytes()) != sz {
						t.Fatalf("step %d: Map(%d): Len %d, Reserved %d, len %d, cap %d; want Reserved %d",
							step, sz, r.Len(), r.Reserved(), len(r.Bytes()), cap(r.Bytes()), rounded)
					}
					// Fresh memory is zeroed: every byte of a small region;
					// of a larger one (a huge limit lets terabytes be mapped,
					// untouched), one byte per page of the first MiB, and the
					// last byte.
					mem := r.Bytes()
					stride := 1
					if sz > 16<<10 {
						stride = int(page)
					}
					for i := 0; i < min(sz, 1<<20); i += stride {
						if mem[i] != 0 {
							t.Fatalf("step %d: Map(%d): byte %d is %#x, want zeroed memory", step, sz, i, mem[i])
						}
					}
					if mem[sz-1] != 0 {
						t.Fatalf("step %d: Map(%d): last byte is %#x, want zeroed memory", step, sz, mem[sz-1])
					}
					used += rounded
					peak = max(peak, used)
					regions = append(regions, r)
				}
				if err != nil && r != nil {
					t.Fatalf("step %d: Map(%d) returned a region and error %v", step, sz, err)
				}
				check(step, "map")
			case opClose:
				if len(regions) == 0 {
					continue
				}
				i := int(in.byte()) % len(regions)
				r := regions[i]
				used -= r.Reserved()
				if err := r.Close(); err != nil {
					t.Fatalf("step %d: Close: %v", step, err)
				}
				if err := r.Close(); err != nil {
					t.Fatalf("step %d: second Close: %v", step, err)
				}
				if r.Len() != 0 || r.Reserved() != 0 || r.Bytes() != nil {
					t.Fatalf("step %d: closed region: Len %d, Reserved %d, Bytes nil %v", step, r.Len(), r.Reserved(), r.Bytes() == nil)
				}
				regions = append(regions[:i], regions[i+1:]...)
				check(step, "close")
			case opNoopRelease:
				b.Release(-int64(in.byte()))
				check(step, "release of nothing")
			case opOverRelease:
				if used != 0 {
					continue
				}
				b.Release(int64(in.u64()>>1) + 1)
				check(step, "over-release")
			case opTouch:
				if len(regions) == 0 {
					continue
				}
				mem := regions[int(in.byte())%len(regions)].Bytes()
				mem[0] = 0xA5
				mem[len(mem)-1] = 0x5A
			}
		}
		for _, r := range regions {
			used -= r.Reserved()
			if err := r.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		regions = nil
		for _, n := range reserved {
			b.Release(n)
			used -= n
		}
		reserved = nil
		check(-1, "everything released")
		if b.Used() != 0 {
			t.Fatalf("Used() = %d after everything was released", b.Used())
		}
	})
}
