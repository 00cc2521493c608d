package arena

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{512, "512 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{64 << 20, "64.0 MiB"},
		{64<<20 + 32, "64.0 MiB"},
		{1<<20 - 1, "1.0 MiB"}, // would otherwise read "1024.0 KiB"
		{3 << 29, "1.5 GiB"},
		{1 << 40, "1.0 TiB"},
		{math.MaxInt64, "8.0 EiB"},
		{-512, "-512 B"},
		{-(12 << 20), "-12.0 MiB"},
		{math.MinInt64, "-8.0 EiB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"4096", 4096},
		{"512B", 512},
		{"512 B", 512},
		{"512KiB", 512 << 10},
		{"64MiB", 64 << 20},
		{"64.0 MiB", 64 << 20}, // FormatBytes output parses back
		{"2GiB", 2 << 30},
		{"1.5GiB", 3 << 29},
		{"1.1GiB", 1181116006}, // 1181116006.4 rounded down
		{"1GB", 1e9},
		{"1gb", 1e9},
		{"2.5kB", 2500},
		{"1TiB", 1 << 40},
		{"7EiB", 7 << 60},
		{"  64 mib  ", 64 << 20},
		{"9223372036854775807", math.MaxInt64},
		{"00012", 12},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBytesErrors(t *testing.T) {
	tests := []struct {
		in  string
		why string // must appear in the message
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"-1", "negative"},
		{"-64MiB", "negative"},
		{"+5", "not a number"},
		{"MiB", "not a number"},
		{".5GiB", "not a number"},
		{"5.GiB", "not a number"},
		{"1.2.3KiB", "not a number"},
		{"1.5", "fraction of a byte"},
		{"1.5B", "fraction of a byte"},
		{"64M", "unknown unit"},
		{"64 K", "unknown unit"},
		{"64XiB", "unknown unit"},
		{"12 MiB extra", "unknown unit"},
		{"0x10", "unknown unit"},
		{"1_000", "unknown unit"},
		{"9223372036854775808", "too large"},
		{"8EiB", "too large"},
		{"99999999999999999999999999GB", "too large"},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if !errors.Is(err, ErrInvalidSize) {
			t.Errorf("ParseBytes(%q) = %d, %v; want ErrInvalidSize", tt.in, got, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.why) || !strings.Contains(msg, `"`+tt.in+`"`) {
			t.Errorf("ParseBytes(%q) error %q: want it to quote the input and say %q", tt.in, msg, tt.why)
		}
	}
}

func TestParseFormatRoundTrip(t *testing.T) {
	// Sizes whose one-decimal rendering is exact must survive the trip.
	for _, n := range []int64{0, 1, 1023, 1 << 10, 3 << 9, 64 << 20, 3 << 29, 1 << 40, 5 << 60} {
		got, err := ParseBytes(FormatBytes(n))
		if err != nil || got != n {
			t.Errorf("ParseBytes(FormatBytes(%d) = %q) = %d, %v", n, FormatBytes(n), got, err)
		}
	}
}
