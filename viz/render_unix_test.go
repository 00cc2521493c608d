//go:build unix

package viz

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// browser finds a Chromium-family browser, or "" when none is installed.
func browser() string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshot renders the SVG file in headless Chromium at the picture's
// size and returns the decoded PNG.
func screenshot(t *testing.T, bin, svgPath string) image.Image {
	t.Helper()
	dir := t.TempDir()
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		// sRGB as drawn, so that colours in the PNG are the SVG's colours.
		"--force-color-profile=srgb", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--window-size="+strconv.Itoa(Width)+","+strconv.Itoa(Height),
		"--screenshot="+shot,
		"file://"+svgPath)
	// Chromium starts helper processes: on a timeout, end the whole group,
	// not only the first process, and stop waiting for their output.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out.Bytes())
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out.Bytes())
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	return img
}

// countColour counts the pixels on the ring (the legend's key swatches are
// elsewhere) within tol of the colour "#rrggbb" in each channel.
// Antialiased edges blend into the background, so only the solid insides of
// shapes count.
func countColour(img image.Image, hex string, tol int) int {
	v, _ := strconv.ParseUint(hex[1:], 16, 32)
	want := [3]int{int(v >> 16), int(v >> 8 & 0xff), int(v & 0xff)}
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if d := math.Hypot(float64(x)+0.5-cx, float64(y)+0.5-cy); d < rIn-overhang-1 || d > rOut+overhang+1 {
				continue
			}
			r, g, bl, _ := img.At(x, y).RGBA()
			got := [3]int{int(r >> 8), int(g >> 8), int(bl >> 8)}
			ok := true
			for i := range got {
				if d := got[i] - want[i]; d > tol || d < -tol {
					ok = false
				}
			}
			if ok {
				n++
			}
		}
	}
	return n
}

// TestRingSVGRenders draws pictures in a real browser and checks the
// screenshot shows them: the ring in its colour, and the differing ranges
// (one leaf each, visible only through their minimum width) in theirs,
// about 190 solid pixels a wedge.
func TestRingSVGRenders(t *testing.T) {
	bin := browser()
	if bin == "" {
		t.Skip("no headless browser (install Debian's chromium to run this test)")
	}
	a, b := sides("a.tree", `a&b<"c">.tree`)
	for _, tc := range []struct {
		name                 string
		ring                 Ring
		minDiffer, maxDiffer int
	}{
		{"seven one-leaf ranges", Ring{Range: fullRing, Depth: 20, Differ: sevenLeaves(), DifferingLeaves: 7, NodesCompared: 41, A: a, B: b}, 500, Width * Height},
		{"identical", Ring{Range: fullRing, Depth: 20, NodesCompared: 1, A: a, B: b}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var svg bytes.Buffer
			if err := RingSVG(&svg, tc.ring); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "ring.svg")
			if err := os.WriteFile(path, svg.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			img := screenshot(t, bin, path)
			t.Logf("rendered in %v", time.Since(start).Round(time.Millisecond))
			if got := img.Bounds().Size(); got.X < Width || got.Y < Height {
				t.Errorf("screenshot %v, want at least %dx%d", got, Width, Height)
			}
			same, differ := countColour(img, ColorSame, 12), countColour(img, ColorDiffer, 12)
			t.Logf("%d pixels of the ring's colour, %d of the differing colour", same, differ)
			// The ring alone covers π(170² − 125²) ≈ 41,700 pixels.
			if same < 20000 {
				t.Errorf("%d pixels of the ring's colour, want > 20000", same)
			}
			if differ < tc.minDiffer || differ > tc.maxDiffer {
				t.Errorf("%d pixels of the differing colour, want %d..%d", differ, tc.minDiffer, tc.maxDiffer)
			}
		})
	}
}
