// Package jsonl reads rows in grove's JSON Lines format, one row per line:
//
//	{"key": "user:123", "value": "…", "ts": 1700000000000000, "deleted": false}
//
// key and value are UTF-8 strings; key_hex and value_hex may stand instead of
// them for binary bytes. ts (int64 microseconds) and a key are required;
// value defaults to empty and deleted to false. Blank lines are skipped.
// Anything else — an unknown field, both key and key_hex, a ts that is not an
// int64, bytes that are not UTF-8 — is an error naming the line.
package jsonl

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/antientropy/grove/engine"
)

// ErrBadRow is wrapped by every error about a malformed line.
var ErrBadRow = errors.New("jsonl: malformed row")

// DefaultMaxLine is the longest line a Reader accepts unless told otherwise.
// A longer line is an error, never a reason to grow without bound.
const DefaultMaxLine = 64 << 20

// Reader reads rows from JSON Lines. It implements engine.RowSource.
type Reader struct {
	in       *bufio.Reader
	line     int
	maxLine  int
	long     []byte // holds a line longer than the bufio buffer
	key      []byte
	value    []byte
	oldValue []byte
	old      engine.Row
}

// NewReader returns a Reader of r that accepts lines up to DefaultMaxLine.
func NewReader(r io.Reader) *Reader {
	return &Reader{in: bufio.NewReaderSize(r, 1<<16), maxLine: DefaultMaxLine}
}

// SetMaxLine sets the longest line accepted, in bytes.
func (r *Reader) SetMaxLine(n int) { r.maxLine = n }

// Line is the number of the line last read, counting from 1.
func (r *Reader) Line() int { return r.line }

// jsonRow mirrors a line; pointers tell a missing field from an empty one.
type jsonRow struct {
	Key      *string         `json:"key"`
	KeyHex   *string         `json:"key_hex"`
	Value    *string         `json:"value"`
	ValueHex *string         `json:"value_hex"`
	TS       json.RawMessage `json:"ts"`
	Deleted  *bool           `json:"deleted"`
}

// NextRow reads the next row into row, whose slices stay valid until the
// next call. It returns io.EOF after the last row.
func (r *Reader) NextRow(row *engine.Row) error {
	line, err := r.nextLine()
	if err != nil {
		return err
	}
	return r.parse(line, row)
}

// nextLine returns the next non-blank line, or io.EOF.
func (r *Reader) nextLine() ([]byte, error) {
	for {
		line, err := r.readLine()
		if err != nil || len(bytes.TrimSpace(line)) > 0 {
			return line, err
		}
	}
}

// readLine returns the next line without its newline, or io.EOF. A line
// longer than the bufio buffer is gathered in r.long, up to the limit.
func (r *Reader) readLine() ([]byte, error) {
	r.long = r.long[:0]
	for {
		frag, err := r.in.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(r.long)+len(frag) > r.maxLine {
				r.line++
				return nil, r.errorf("line is longer than the limit of %d bytes", r.maxLine)
			}
			r.long = append(r.long, frag...)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("jsonl: reading line %d: %w", r.line+1, err)
		}
		if len(r.long) > 0 {
			r.long = append(r.long, frag...)
			frag = r.long
		}
		if len(frag) == 0 {
			return nil, io.EOF
		}
		r.line++
		frag = bytes.TrimSuffix(frag, []byte("\n"))
		if len(frag) > r.maxLine {
			return nil, r.errorf("line is %d bytes, longer than the limit of %d", len(frag), r.maxLine)
		}
		return frag, nil
	}
}

func (r *Reader) errorf(format string, a ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrBadRow, r.line, fmt.Sprintf(format, a...))
}

// decodeLine decodes one line, strictly (see strictCheck), into v.
func (r *Reader) decodeLine(line []byte, v any, f *fields) error {
	if !utf8.Valid(line) {
		return r.errorf("not valid UTF-8 (use key_hex/value_hex for binary bytes)")
	}
	if err := strictCheck(line, f); err != nil {
		return r.errorf("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return r.errorf("%v", err)
	}
	if dec.More() {
		return r.errorf("more than one JSON value on the line")
	}
	return nil
}

// parseTS reads a required int64 timestamp.
func (r *Reader) parseTS(raw json.RawMessage, name string) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, r.errorf("no %s", name)
	}
	ts, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, r.errorf("%s %s is not an int64", name, raw)
	}
	return ts, nil
}

func (r *Reader) parse(line []byte, row *engine.Row) error {
	var jr jsonRow
	if err := r.decodeLine(line, &jr, rowFields); err != nil {
		return err
	}
	var err error
	if r.key, err = field(r.key[:0], jr.Key, jr.KeyHex, "key"); err != nil {
		return r.errorf("%v", err)
	}
	if jr.Key == nil && jr.KeyHex == nil {
		return r.errorf("no key (need \"key\" or \"key_hex\")")
	}
	if err := r.checkKey(r.key); err != nil {
		return err
	}
	if r.value, err = field(r.value[:0], jr.Value, jr.ValueHex, "value"); err != nil {
		return r.errorf("%v", err)
	}
	ts, err := r.parseTS(jr.TS, "ts")
	if err != nil {
		return err
	}
	row.Key, row.Value, row.TS = r.key, r.value, ts
	row.Deleted = jr.Deleted != nil && *jr.Deleted
	return nil
}

// checkKey refuses a key longer than engine.MaxKeyBytes here, on its line:
// accepted, it would be a row no repair session could ever move.
func (r *Reader) checkKey(key []byte) error {
	if len(key) > engine.MaxKeyBytes {
		return r.errorf("key of %d bytes, over the limit of %d (engine.MaxKeyBytes)", len(key), engine.MaxKeyBytes)
	}
	return nil
}

// field decodes the text or hex form of a field into dst.
func field(dst []byte, text, hexText *string, name string) ([]byte, error) {
	switch {
	case text != nil && hexText != nil:
		return nil, fmt.Errorf("both %q and %q", name, name+"_hex")
	case text != nil:
		return append(dst, *text...), nil
	case hexText != nil:
		b, err := hex.AppendDecode(dst, []byte(*hexText))
		if err != nil {
			return nil, fmt.Errorf("%s_hex: %v", name, err)
		}
		return b, nil
	}
	return dst, nil
}
