package arena

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/antientropy/grove/internal/invariants"
)

func TestBudgetAccounting(t *testing.T) {
	type step struct {
		op      string // "reserve" or "release"
		n       int64
		wantErr error
		used    int64
		peak    int64
	}
	tests := []struct {
		name  string
		limit int64
		steps []step
	}{
		{"fill exactly", 100, []step{
			{"reserve", 60, nil, 60, 60},
			{"reserve", 40, nil, 100, 100},
			{"reserve", 1, ErrBudgetExceeded, 100, 100},
			{"release", 100, nil, 0, 100},
		}},
		{"all or nothing", 100, []step{
			{"reserve", 70, nil, 70, 70},
			{"reserve", 31, ErrBudgetExceeded, 70, 70}, // must not take the 30 that fit
			{"reserve", 30, nil, 100, 100},
		}},
		{"peak is a high-water mark", 100, []step{
			{"reserve", 80, nil, 80, 80},
			{"release", 50, nil, 30, 80},
			{"reserve", 20, nil, 50, 80},
			{"reserve", 40, nil, 90, 90},
		}},
		{"over-release clamps at zero", 100, []step{
			{"reserve", 10, nil, 10, 10},
			{"release", 25, nil, 0, 10},
			{"reserve", 100, nil, 100, 100}, // clamping must not have added capacity
			{"reserve", 1, ErrBudgetExceeded, 100, 100},
		}},
		{"zero and negative", 100, []step{
			{"reserve", 0, nil, 0, 0},
			{"reserve", -1, ErrInvalidSize, 0, 0},
			{"reserve", 5, nil, 5, 5},
			{"release", -5, nil, 5, 5},
			{"release", 0, nil, 5, 5},
		}},
		{"zero limit", 0, []step{
			{"reserve", 1, ErrBudgetExceeded, 0, 0},
			{"reserve", 0, nil, 0, 0},
		}},
		{"negative limit is zero capacity", -10, []step{
			{"reserve", 1, ErrBudgetExceeded, 0, 0},
		}},
		{"huge ask does not overflow", 1 << 62, []step{
			{"reserve", 1 << 61, nil, 1 << 61, 1 << 61},
			{"reserve", 1<<63 - 1, ErrBudgetExceeded, 1 << 61, 1 << 61},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBudget(tt.limit)
			for i, s := range tt.steps {
				var err error
				if s.op == "reserve" {
					err = b.Reserve(s.n)
				} else if s.n > b.Used() && invariants.Enabled {
					// A programming error: under the invariants tag it
					// panics instead of clamping.
					mustPanic(t, "over-release", func() { b.Release(s.n) })
					return
				} else {
					b.Release(s.n)
				}
				if s.wantErr == nil && err != nil || s.wantErr != nil && !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d %s(%d): err = %v, want %v", i, s.op, s.n, err, s.wantErr)
				}
				if b.Used() != s.used || b.Peak() != s.peak {
					t.Fatalf("step %d %s(%d): used %d peak %d, want used %d peak %d",
						i, s.op, s.n, b.Used(), b.Peak(), s.used, s.peak)
				}
				if want := max(tt.limit, 0) - s.used; b.Available() != want {
					t.Fatalf("step %d: Available() = %d, want %d", i, b.Available(), want)
				}
			}
			if b.Limit() != max(tt.limit, 0) {
				t.Fatalf("Limit() = %d, want %d", b.Limit(), max(tt.limit, 0))
			}
		})
	}
}

func TestBudgetExceededMessage(t *testing.T) {
	b := NewBudget(64 << 20)
	if err := b.Reserve(52 << 20); err != nil {
		t.Fatal(err)
	}
	err := b.Reserve(64<<20 + 32)
	if !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("err = %v, want ErrBudgetExceeded", err)
	}
	want := "arena: budget exceeded: asked 64.0 MiB (67108896 B), 12.0 MiB (12582912 B) left of 64.0 MiB"
	if err.Error() != want {
		t.Fatalf("message:\n got %q\nwant %q", err.Error(), want)
	}
}

func TestBudgetString(t *testing.T) {
	b := NewBudget(64 << 20)
	_ = b.Reserve(20 << 20)
	b.Release(8 << 20)
	if got, want := b.String(), "used 12.0 MiB / limit 64.0 MiB (peak 20.0 MiB)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// TestBudgetConcurrent has goroutines race for more than the budget holds.
// Each one checks, while it holds its reservation, that the total never
// exceeds the limit; run it with -race to also catch unguarded fields.
func TestBudgetConcurrent(t *testing.T) {
	const (
		limit   = 1000
		workers = 64
		rounds  = 500
	)
	b := NewBudget(limit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var granted, refused int
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ok, no int
			for i := range rounds {
				n := int64(1 + (w*31+i*17)%100)
				if err := b.Reserve(n); err != nil {
					if !errors.Is(err, ErrBudgetExceeded) {
						t.Errorf("Reserve(%d): %v", n, err)
						return
					}
					no++
					continue
				}
				ok++
				if u := b.Used(); u > limit {
					t.Errorf("Used() = %d exceeds limit %d", u, limit)
				}
				b.Release(n)
			}
			mu.Lock()
			granted, refused = granted+ok, refused+no
			mu.Unlock()
		}()
	}
	wg.Wait()
	if b.Used() != 0 {
		t.Fatalf("Used() = %d after all releases, want 0", b.Used())
	}
	if p := b.Peak(); p > limit || p == 0 {
		t.Fatalf("Peak() = %d, want in (0, %d]", p, limit)
	}
	if granted == 0 {
		t.Fatal("no reservation was ever granted")
	}
	t.Logf("granted %d, refused %d, peak %s", granted, refused, FormatBytes(b.Peak()))
	if !strings.Contains(b.String(), "used 0 B") {
		t.Fatalf("String() = %q", b.String())
	}
}

// mustPanic runs f and fails unless it panics.
func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic under the invariants tag", what)
		}
	}()
	f()
}

// TestBudgetPages: a budget's page size rounds what Map charges; a page that
// is not a power of two at least the OS's is refused.
func TestBudgetPages(t *testing.T) {
	osPage := os.Getpagesize()
	for _, tc := range []struct {
		page int
		ok   bool
	}{{osPage, true}, {16 << 10, true}, {64 << 10, true}, {osPage / 2, false}, {3 * osPage, false}, {0, false}} {
		b, err := NewBudgetPages(1<<30, tc.page)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidSize)) {
			t.Fatalf("page %d: %v, want ok=%v", tc.page, err, tc.ok)
		}
		if !tc.ok {
			continue
		}
		r, err := Map(b, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.Reserved() != int64(tc.page) || b.Used() != int64(tc.page) || b.PageSize() != tc.page {
			t.Fatalf("page %d: reserved %d, used %d", tc.page, r.Reserved(), b.Used())
		}
		r.Close()
	}
	if NewBudget(1).PageSize() != osPage {
		t.Fatal("NewBudget does not use the OS page size")
	}
}
