package viz

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/antientropy/grove/engine/token"
)

// Number formats for people. Tokens span ±9.2e18, so the picture abbreviates
// them to three significant digits; the tooltips keep them exact.

// abbrev formats a token: exact below 10,000 in magnitude, else as −9.22e18.
// The minus is U+2212, which sets as wide as the digits, unlike a hyphen.
func abbrev(t token.Token) string {
	if t > -10000 && t < 10000 {
		return strings.Replace(strconv.FormatInt(t, 10), "-", "−", 1)
	}
	return sci(float64(t))
}

// abbrevU formats a width the same way as abbrev.
func abbrevU(w uint64) string {
	if w < 10000 {
		return strconv.FormatUint(w, 10)
	}
	return sci(float64(w))
}

func sci(v float64) string {
	s := strconv.FormatFloat(v, 'e', 2, 64) // -9.22e+18, 1.00e+04
	return strings.NewReplacer("-", "−", "e+0", "e", "e+", "e").Replace(s)
}

// group formats n with thousands separators: 1,048,576.
func group(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// plural formats a count with its noun: 1 leaf, 2 leaves.
func plural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return group(n) + " " + many
}

// percent formats part/whole as a percentage with three significant digits,
// however small: one leaf of 2^20 is 0.0000954%, not 0.00%.
func percent(part, whole uint64) string {
	switch {
	case part == 0:
		return "0%"
	case part >= whole:
		return "100%"
	}
	p := float64(part) / float64(whole) * 100
	if p >= 1 {
		s := strconv.FormatFloat(p, 'f', 2, 64)
		if s == "100.00" {
			// Not all of it differs, and rounding must not say so.
			s = "99.99"
		}
		return s + "%"
	}
	decimals := 2 - int(math.Floor(math.Log10(p)))
	return strconv.FormatFloat(p, 'f', min(decimals, 22), 64) + "%"
}

// bytesText formats a size: exact below 10,000 bytes, where the exact figure
// is short and the point (e.g. 1,312 B for a diff) is how few they are.
func bytesText(n int64) string {
	if n < 10000 {
		return group(uint64(n)) + " B"
	}
	v := float64(n)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f %s", v, units[u])
	case v < 100:
		return fmt.Sprintf("%.1f %s", v, units[u])
	}
	return fmt.Sprintf("%.0f %s", v, units[u])
}

// shorten keeps the last n runes of s behind an ellipsis: the end of a path
// names the file.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}
