package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/antientropy/grove/engine/jsonl"
)

// progress is a bar on stderr for long work, or nothing: off a terminal (a
// pipe, a file, CI) and under --quiet every method does nothing, so callers
// need not check.
type progress struct {
	bar *progressbar.ProgressBar
}

// progress returns a bar for work of total units (bytes when bytes is set;
// total -1 for a spinner of unknown length), described by desc.
func (e *env) progress(total int64, desc string, bytes bool) *progress {
	f, ok := e.stderr.(*os.File)
	if e.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(bytes),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
	}
	if !bytes {
		opts = append(opts, progressbar.OptionShowIts()) // bytes show their own rate
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...)}
}

// Add advances the bar by n units.
func (p *progress) Add(n int64) {
	if p.bar != nil {
		p.bar.Add64(n)
	}
}

// Set moves the bar to n units of total, describing the stage.
func (p *progress) Set(desc string, n, total int64) {
	if p.bar == nil {
		return
	}
	if total > 0 && total != p.bar.GetMax64() {
		p.bar.ChangeMax64(total)
	}
	p.bar.Describe(desc)
	p.bar.Set64(n)
}

// Done clears the bar.
func (p *progress) Done() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// reader counts what passes through it on the bar.
func (p *progress) reader(r io.Reader) io.Reader {
	if p.bar == nil {
		return r
	}
	return &barReader{r: r, p: p}
}

type barReader struct {
	r io.Reader
	p *progress
}

func (b *barReader) Read(buf []byte) (int, error) {
	n, err := b.r.Read(buf)
	b.p.Add(int64(n))
	return n, err
}

// openRowsShown opens a rows file with a bar of its bytes read.
func openRowsShown(path string, e *env, desc string) (*rowFile, *progress, error) {
	rf, err := openRows(path)
	if err != nil {
		return nil, nil, err
	}
	total := int64(-1)
	if st, err := rf.f.Stat(); err == nil {
		total = st.Size()
	}
	p := e.progress(total, desc, true)
	rf.r = jsonl.NewReader(p.reader(rf.f))
	return rf, p, nil
}
