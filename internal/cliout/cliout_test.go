package cliout

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

type failAfter struct {
	n   int
	buf bytes.Buffer
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return f.buf.Write(p)
}

// TestWriterKeepsFirstError: writes pass through until one fails; that
// error is kept and returned by every later write.
func TestWriterKeepsFirstError(t *testing.T) {
	dst := &failAfter{n: 1}
	w := &Writer{W: dst}
	fmt.Fprint(w, "one")
	if w.Err() != nil || dst.buf.String() != "one" {
		t.Fatalf("first write: %v, %q", w.Err(), dst.buf.String())
	}
	fmt.Fprint(w, "two")
	fmt.Fprint(w, "three")
	if w.Err() == nil || w.Err().Error() != "disk full" || dst.buf.String() != "one" {
		t.Fatalf("after a failed write: %v, %q", w.Err(), dst.buf.String())
	}
}
