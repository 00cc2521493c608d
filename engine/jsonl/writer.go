package jsonl

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/antientropy/grove/engine"
)

// writerBufSize is how many bytes a Writer gathers before it writes them out:
// large enough that a write per 64 KiB costs little next to encoding, small
// enough not to matter beside the rows themselves.
const writerBufSize = 64 << 10

// Writer writes rows as JSON Lines, one row per line, in the format Reader
// reads, so that a Reader gives back exactly the rows written:
//
//	{"key":"user:123","value":"v1","ts":1700000000000000,"deleted":false}
//
// A key or value that is valid UTF-8 is written as a JSON string, anything
// else as key_hex or value_hex. Every field is written, even an empty value
// or a false deleted flag, so that a line reads the same to a tool that does
// not know the defaults.
//
// Output is buffered: call Flush after the last row. After a write to the
// underlying io.Writer fails, every later call returns that error. A row
// whose line is longer than DefaultMaxLine is written, but a Reader reads
// it back only after SetMaxLine. A Writer is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
	err error // sticky: the first failed write
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, writerBufSize)}
}

// WriteRow writes r as one line. It keeps nothing of r after it returns, and
// allocates nothing once its buffer has grown to the longest line.
func (w *Writer) WriteRow(r *engine.Row) error {
	if w.err != nil {
		return w.err
	}
	if r == nil {
		return fmt.Errorf("%w: nil row given to WriteRow", ErrBadRow)
	}
	w.buf = appendRow(w.buf, r)
	if len(w.buf) >= writerBufSize {
		return w.flush()
	}
	return nil
}

// Flush writes out every buffered line.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	return w.flush()
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.w.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("jsonl: writing rows: %w", err)
		return w.err
	}
	if cap(w.buf) > 4*writerBufSize {
		// One huge row must not pin a huge buffer for the rest of the rows.
		w.buf = make([]byte, 0, writerBufSize)
	} else {
		w.buf = w.buf[:0]
	}
	return nil
}

// appendRow appends r's line, newline included, to dst.
func appendRow(dst []byte, r *engine.Row) []byte {
	dst = append(dst, '{')
	dst = appendBytesField(dst, `"key`, r.Key)
	dst = append(dst, ',')
	dst = appendBytesField(dst, `"value`, r.Value)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, r.TS, 10)
	if r.Deleted {
		dst = append(dst, `,"deleted":true}`...)
	} else {
		dst = append(dst, `,"deleted":false}`...)
	}
	return append(dst, '\n')
}

// appendBytesField appends a name ("key without its closing quote) and b,
// as text if the reader will take it back byte for byte, in hex otherwise.
// Valid UTF-8 is enough: it cannot hold a surrogate (the one thing besides
// invalid bytes the strict reader rejects), and the escapes below cover
// everything JSON forbids raw inside a string.
func appendBytesField(dst []byte, name string, b []byte) []byte {
	dst = append(dst, name...)
	if !utf8.Valid(b) {
		dst = append(dst, `_hex":"`...)
		dst = hex.AppendEncode(dst, b)
		return append(dst, '"')
	}
	dst = append(dst, `":`...)
	return appendString(dst, b)
}

const hexDigits = "0123456789abcdef"

// appendString appends s, valid UTF-8, as a JSON string. Only '"', '\\' and
// control bytes need escaping; runs of other bytes are copied whole.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
