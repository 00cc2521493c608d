package fuzz

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
)

// readerBufs hold the 64 KiB buffers of the targets' line readers.
// jsonl.NewReader wraps its source in a bufio.Reader of 64 KiB, and
// bufio.NewReaderSize hands back a source that already is one that large,
// so a reader made by newLineReader reads through the same size of buffer,
// taking the same paths for long lines, without allocating and zeroing
// 64 KiB for every input (most of the cost of a short one).
var readerBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1<<16) }}

// newLineReader returns a jsonl.Reader over src; release gives its buffer
// back once the reader is done with.
func newLineReader(src io.Reader) (r *jsonl.Reader, release func()) {
	buf := readerBufs.Get().(*bufio.Reader)
	buf.Reset(src)
	return jsonl.NewReader(buf), func() { buf.Reset(nil); readerBufs.Put(buf) }
}

// refRow is what the reference decoder makes of one line.
type refRow struct {
	blank bool
	row   engine.Row
	err   string // why the line is malformed; "" if it is a row
}

var rowFields = map[string]bool{"key": true, "key_hex": true, "value": true, "value_hex": true, "ts": true, "deleted": true}

// refParse decodes one line (without its '\n') by docs/FORMAT.md's rules,
// strictly: exactly one JSON object; only the six field names, spelled
// exactly, each at most once; "key" or "key_hex" (not both), optional
// "value" or "value_hex" (not both), a "ts" that is a JSON integer fitting
// an int64, an optional boolean "deleted"; no invalid UTF-8 and no string
// escape that is not a Unicode scalar value (a lone surrogate). A JSON null
// counts as an absent field, as in the reader.
func refParse(line []byte, maxLine int) refRow {
	if len(line) > maxLine {
		return refRow{err: "longer than the limit"}
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return refRow{blank: true}
	}
	if !utf8.Valid(line) {
		return refRow{err: "not UTF-8"}
	}
	// encoding/json alone is lenient in four ways the format is not
	// (found by this target, since fixed in the reader): its Decoder stops
	// after the first value, so "{...}}" passed; it matches field names
	// without regard to case; a repeated field overwrites the first; and it
	// turns a lone surrogate escape into U+FFFD.
	if !json.Valid(line) {
		return refRow{err: "not one JSON value"}
	}
	if lone := loneSurrogate(line); lone != "" {
		return refRow{err: "escape " + lone + " is not a Unicode scalar value"}
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return refRow{err: "not an object"}
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return refRow{err: err.Error()}
		}
		name := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return refRow{err: err.Error()}
		}
		if !rowFields[name] {
			return refRow{err: "unknown field " + strconv.Quote(name)}
		}
		if _, dup := fields[name]; dup {
			return refRow{err: "field " + strconv.Quote(name) + " twice"}
		}
		fields[name] = raw
	}
	str := func(name string) (*string, error) {
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			return nil, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		return &s, nil
	}
	bytesOf := func(name string) ([]byte, bool, error) {
		text, err := str(name)
		if err != nil {
			return nil, false, err
		}
		hx, err := str(name + "_hex")
		if err != nil {
			return nil, false, err
		}
		switch {
		case text != nil && hx != nil:
			return nil, false, fmt.Errorf("both %s and %s_hex", name, name)
		case text != nil:
			return []byte(*text), true, nil
		case hx != nil:
			b, err := hex.DecodeString(*hx)
			if err != nil {
				return nil, false, fmt.Errorf("%s_hex: %v", name, err)
			}
			return b, true, nil
		}
		return []byte{}, false, nil
	}
	var out refRow
	key, haveKey, err := bytesOf("key")
	if err != nil {
		return refRow{err: err.Error()}
	}
	if !haveKey {
		return refRow{err: "no key"}
	}
	value, _, err := bytesOf("value")
	if err != nil {
		return refRow{err: err.Error()}
	}
	raw, ok := fields["ts"]
	if !ok || string(raw) == "null" {
		return refRow{err: "no ts"}
	}
	if !isJSONInteger(raw) {
		return refRow{err: "ts is not an integer"}
	}
	ts, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return refRow{err: "ts does not fit an int64"}
	}
	if raw, ok := fields["deleted"]; ok && string(raw) != "null" {
		var d bool
		if err := json.Unmarshal(raw, &d); err != nil {
			return refRow{err: "deleted: " + err.Error()}
		}
		out.row.Deleted = d
	}
	out.row.Key, out.row.Value, out.row.TS = key, value, ts
	return out
}

func isJSONInteger(raw []byte) bool {
	s := string(raw)
	s = strings.TrimPrefix(s, "-")
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// loneSurrogate returns the first \uXXXX escape of a valid JSON text that is
// a UTF-16 surrogate not part of a high-low pair, or "".
func loneSurrogate(line []byte) string {
	code := func(i int) (rune, bool) { // the escape at line[i:i+6]
		if i+6 > len(line) || line[i] != '\\' || line[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(line[i+2:i+6]), 16, 32)
		return rune(v), err == nil
	}
	for i := 0; i < len(line); i++ {
		if line[i] != '\\' {
			continue
		}
		c, ok := code(i)
		if !ok {
			i++ // a two-byte escape such as \\ or \"
			continue
		}
		switch {
		case c >= 0xD800 && c < 0xDC00:
			if lo, ok := code(i + 6); ok && lo >= 0xDC00 && lo < 0xE000 {
				i += 11
				continue
			}
			return string(line[i : i+6])
		case c >= 0xDC00 && c < 0xE000:
			return string(line[i : i+6])
		}
		i += 5
	}
	return ""
}

// splitLines splits data the way a line reader must: at each '\n'; a last
// line without one still counts, an empty remainder does not.
func splitLines(data []byte) [][]byte {
	var lines [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lines = append(lines, data)
			break
		}
		lines = append(lines, data[:i])
		data = data[i+1:]
	}
	return lines
}

var maxLines = []int{4096, 0, 1, 16, 64, 100, 1000, 65535, 65536, 65537, 1 << 20}

// FuzzRowReader reads arbitrary bytes with jsonl.Reader.NextRow and checks
// every outcome against refParse, line by line: a row where the reference
// finds one, with the same key, value, ts and tombstone and Line() naming
// its line; an error wrapping jsonl.ErrBadRow and naming "line N", N ==
// Line(), where the reference finds the line malformed; io.EOF after the
// last line. (FuzzChangeReader puts arbitrary bytes through NextChange.)
// pad spaces are put in front of the first line, so that lines longer than
// the reader's 64 KiB buffer are tried too; maxSel picks the line limit.
func FuzzRowReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, pad uint32, maxSel uint8) {
		maxLine := maxLines[int(maxSel)%len(maxLines)]
		if n := int(pad % (200 << 10)); pad%7 == 0 && n > 0 {
			data = append(bytes.Repeat([]byte{' '}, n), data...)
		}
		r, release := newLineReader(bytes.NewReader(data))
		defer release()
		r.SetMaxLine(maxLine)
		lines := splitLines(data)
		next := 0 // index of the next line the reader should look at
		for {
			var row engine.Row
			err := r.NextRow(&row)
			// What the reference expects next: skip blank lines.
			var want refRow
			for want.blank = true; want.blank && next < len(lines); next++ {
				want = refParse(lines[next], maxLine)
			}
			if want.blank { // the reference has no more rows
				if err != io.EOF {
					t.Fatalf("after the last line (%d): got %v, row %+v; want io.EOF", len(lines), err, row)
				}
				return
			}
			if errors.Is(err, io.EOF) {
				t.Fatalf("io.EOF at line %d, which the reference reads as %+v", next, want)
			}
			if err != nil {
				if !errors.Is(err, jsonl.ErrBadRow) {
					t.Fatalf("line %d: error %v does not wrap ErrBadRow", next, err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("line %d:", r.Line())) {
					t.Fatalf("error %q does not name line %d (Line())", err, r.Line())
				}
				if r.Line() != next {
					t.Fatalf("error on line %d, Line() = %d: %v", next, r.Line(), err)
				}
				if want.err == "" {
					t.Fatalf("line %d %q: reader says %v, reference reads %+v", next, lines[next-1], err, want.row)
				}
				return
			}
			if want.err != "" {
				t.Fatalf("line %d %q: reader returns row %+v, reference rejects it: %s", next, lines[next-1], row, want.err)
			}
			if r.Line() != next {
				t.Fatalf("row from line %d, Line() = %d", next, r.Line())
			}
			if !bytes.Equal(row.Key, want.row.Key) || !bytes.Equal(row.Value, want.row.Value) ||
				row.TS != want.row.TS || row.Deleted != want.row.Deleted {
				t.Fatalf("line %d %q: reader gives %+v, reference %+v", next, lines[next-1], row, want.row)
			}
		}
	})
}

// FuzzChangeReader reads arbitrary bytes with jsonl.Reader.NextChange: it
// must not panic, every error must wrap ErrBadRow and name the line that
// Line() reports, and a change it returns must be one a live tree can apply
// (an op it knows; a put or delete not older than its old row).
func FuzzChangeReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, release := newLineReader(bytes.NewReader(data))
		defer release()
		r.SetMaxLine(4096)
		for i := 0; ; i++ {
			var c jsonl.Change
			err := r.NextChange(&c)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if !errors.Is(err, jsonl.ErrBadRow) || !strings.Contains(err.Error(), fmt.Sprintf("line %d:", r.Line())) {
					t.Fatalf("error %v: want ErrBadRow naming line %d", err, r.Line())
				}
				return
			}
			switch c.Op {
			case jsonl.OpPut:
			case jsonl.OpDelete:
				if !c.New.Deleted || c.Old == nil {
					t.Fatalf("line %d: delete %+v", r.Line(), c)
				}
			case jsonl.OpPurge:
				if c.Old == nil {
					t.Fatalf("line %d: purge without old", r.Line())
				}
			default:
				t.Fatalf("line %d: op %q", r.Line(), c.Op)
			}
			if c.Old != nil && c.Op != jsonl.OpPurge && c.New.TS < c.Old.TS {
				t.Fatalf("line %d: ts %d older than old.ts %d", r.Line(), c.New.TS, c.Old.TS)
			}
			if c.Old != nil && !bytes.Equal(c.Old.Key, c.New.Key) {
				t.Fatalf("line %d: old key %q, new key %q", r.Line(), c.Old.Key, c.New.Key)
			}
		}
	})
}

// FuzzRowRoundTrip encodes a row as a JSON line the way a writer of the
// format may — text or _hex fields (text only for valid UTF-8), in any field
// order, with optional fields left out, spaces, a CRLF or no final newline,
// blank lines before — and checks that the reader gives back exactly that
// row on the right line.
func FuzzRowRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, key, value []byte, ts int64, deleted bool, form uint16) {
		bit := func(i uint) bool { return form&(1<<i) != 0 }
		type kv struct{ name, val string }
		enc := func(v any) string {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		var fields []kv
		if utf8.Valid(key) && !bit(0) {
			fields = append(fields, kv{"key", enc(string(key))})
		} else {
			fields = append(fields, kv{"key_hex", enc(hexCase(key, bit(1)))})
		}
		switch {
		case len(value) == 0 && bit(2):
			// left out: empty
		case utf8.Valid(value) && !bit(3):
			fields = append(fields, kv{"value", enc(string(value))})
		default:
			fields = append(fields, kv{"value_hex", enc(hexCase(value, bit(1)))})
		}
		fields = append(fields, kv{"ts", strconv.FormatInt(ts, 10)})
		if deleted || !bit(4) {
			fields = append(fields, kv{"deleted", strconv.FormatBool(deleted)})
		}
		// A rotation of the field order.
		rot := int(form>>8) % len(fields)
		fields = append(fields[rot:], fields[:rot]...)
		sp := ""
		if bit(5) {
			sp = " "
		}
		var line strings.Builder
		line.WriteString(sp + "{")
		for i, fv := range fields {
			if i > 0 {
				line.WriteString("," + sp)
			}
			line.WriteString(enc(fv.name) + ":" + sp + fv.val)
		}
		line.WriteString("}" + sp)
		blanks := int(form>>12) % 4
		text := strings.Repeat("\n", blanks) + line.String()
		switch {
		case bit(6):
			text += "\r\n"
		case bit(7):
			text += "\n"
		}

		r, release := newLineReader(strings.NewReader(text))
		defer release()
		r.SetMaxLine(len(line.String()) + 1)
		var row engine.Row
		if err := r.NextRow(&row); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if !bytes.Equal(row.Key, key) || !bytes.Equal(row.Value, value) || row.TS != ts || row.Deleted != deleted {
			t.Fatalf("%q: read %+v, want key %q value %q ts %d deleted %v", text, row, key, value, ts, deleted)
		}
		if r.Line() != blanks+1 {
			t.Fatalf("%q: Line() = %d, want %d", text, r.Line(), blanks+1)
		}
		if err := r.NextRow(&row); err != io.EOF {
			t.Fatalf("%q: after the row: %v, want io.EOF", text, err)
		}
	})
}

func hexCase(b []byte, upper bool) string {
	s := hex.EncodeToString(b)
	if upper {
		s = strings.ToUpper(s)
	}
	return s
}
