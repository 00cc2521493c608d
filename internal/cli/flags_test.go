package cli

import (
	"strings"
	"testing"

	"github.com/antientropy/grove/engine"
)

func TestDepth(t *testing.T) {
	for _, min := range []int{0, 1} {
		fs := NewFlagSet("t")
		d := AddDepth(fs, min)
		if d.Depth != engine.AutoDepth || d.String() != "auto" {
			t.Fatalf("default %d %q, want auto", d.Depth, d.String())
		}
		if err := fs.Parse([]string{"--depth", "32"}); err != nil || d.Depth != 32 {
			t.Fatalf("--depth 32: %v, %d", err, d.Depth)
		}
		if err := d.Set("auto"); err != nil || d.Depth != engine.AutoDepth {
			t.Fatalf("auto: %v, %d", err, d.Depth)
		}
		err := d.Set("0")
		if min == 0 && (err != nil || d.Depth != 0) {
			t.Fatalf("min 0, depth 0: %v, %d", err, d.Depth)
		}
		if min == 1 && (err == nil || err.Error() != `depth "0": want 1..32 or auto`) {
			t.Fatalf("min 1, depth 0: %v", err)
		}
		for _, bad := range []string{"33", "-1", "x"} {
			if err := d.Set(bad); err == nil || !strings.Contains(err.Error(), "or auto") {
				t.Errorf("min %d, %q: %v", min, bad, err)
			}
		}
	}
}

func TestBudget(t *testing.T) {
	fs := NewFlagSet("t")
	b := AddBudget(fs, "64MiB", "")
	got, err := b.Get()
	if err != nil || got.Available() > 64<<20 {
		t.Fatalf("%v, %d available", err, got.Available())
	}
	fs.Parse([]string{"--budget", "lots"})
	if _, err := b.Get(); err == nil || !strings.HasPrefix(err.Error(), "--budget: ") {
		t.Fatalf("--budget lots: %v", err)
	}
}

func TestMessageLimit(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want int
	}{{"", 64 << 20}, {"64KiB", 64 << 10}, {"1GiB", 1 << 30}, {"63KiB", -1}, {"2GiB", -1}, {"x", -1}} {
		fs := NewFlagSet("t")
		n := AddNet(fs)
		if tc.arg != "" {
			fs.Parse([]string{"--max-message", tc.arg})
		}
		got, err := n.MessageLimit()
		if tc.want < 0 {
			if err == nil || !strings.Contains(err.Error(), "want a size from 64KiB to 1GiB") {
				t.Errorf("%q: %d, %v", tc.arg, got, err)
			}
		} else if err != nil || got != tc.want {
			t.Errorf("%q: %d, %v; want %d", tc.arg, got, err, tc.want)
		}
	}
	if c, err := AddNet(NewFlagSet("t")).TLSConfig(true); c != nil || err != nil {
		t.Fatalf("no TLS flags: %v, %v", c, err)
	}
}
