package arena

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

// binaryUnits are the IEC units FormatBytes prints, smallest first.
var binaryUnits = []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// FormatBytes renders n for people: whole bytes below 1 KiB ("512 B"),
// otherwise one decimal in the largest binary unit that keeps the number
// under 1024 ("64.0 MiB", "1.5 GiB"). Binary units because budgets and
// trees are sized in powers of two; the exact byte count belongs next to it
// in any message where precision matters.
func FormatBytes(n int64) string {
	sign, u := "", uint64(n)
	if n < 0 {
		sign, u = "-", -u // two's complement negation is exact even for MinInt64
	}
	if u < 1024 {
		return fmt.Sprintf("%s%d B", sign, u)
	}
	v, i := float64(u)/1024, 0
	// Move up while the rounded figure would read 1024.0 or more.
	for v >= 1023.95 && i < len(binaryUnits)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%s%.1f %s", sign, v, binaryUnits[i])
}

// unitMultipliers maps lower-cased unit names to bytes. Bare "K", "M", "G"
// are left out on purpose: whether they mean 1000 or 1024 is exactly the
// ambiguity that makes a budget off by 7%.
var unitMultipliers = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "eb": 1e18,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50, "eib": 1 << 60,
}

// ParseBytes reads a size such as "4096", "512KiB", "64MiB", "1.5GiB" or
// "1GB". KiB..EiB are powers of 1024 and KB..EB powers of 1000, matched
// without regard to case; a space may separate number and unit, so what
// FormatBytes prints for a non-negative size parses back (to the figure as
// rounded for display). A fraction that does not come out to whole
// bytes is rounded down, and a fraction of a plain byte count is rejected.
// Errors wrap ErrInvalidSize and quote the text: empty input, negatives,
// unknown or ambiguous units, malformed numbers, and values above
// math.MaxInt64.
func ParseBytes(s string) (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("%w: %q: %s", ErrInvalidSize, s, why)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return bad("empty")
	}
	if t[0] == '-' {
		return bad("negative")
	}
	end := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(t)
	}
	num, unit := t[:end], strings.TrimSpace(t[end:])
	if num == "" {
		return bad("not a number")
	}
	mult, ok := unitMultipliers[strings.ToLower(unit)]
	if !ok {
		return bad(fmt.Sprintf("unknown unit %q (use B, KiB, MiB, GiB, TiB, PiB, EiB, or KB, MB, GB, TB, PB, EB)", unit))
	}
	whole, frac, hasDot := strings.Cut(num, ".")
	if whole == "" || (hasDot && frac == "") || strings.Contains(frac, ".") {
		return bad("not a number")
	}
	if hasDot && mult == 1 {
		return bad("fraction of a byte")
	}
	// Exact arithmetic: "1.1GiB" must not depend on float rounding, and the
	// overflow check must see the true value however many digits were typed.
	v, ok := new(big.Int).SetString(whole+frac, 10)
	if !ok {
		return bad("not a number")
	}
	v.Mul(v, big.NewInt(mult))
	v.Quo(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if v.Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return bad("too large")
	}
	return v.Int64(), nil
}
