package jsonl

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/antientropy/grove/engine"
)

func TestReaderRows(t *testing.T) {
	in := `{"key": "user:123", "value": "v1", "ts": 1700000000000000, "deleted": false}

{"key_hex": "00ff", "value_hex": "c0de", "ts": -5, "deleted": true}
{"key": "k", "ts": 9223372036854775807}
{"key": "last", "value": "no newline at the end", "ts": 1}`
	want := []struct {
		key, value string
		ts         int64
		deleted    bool
		line       int
	}{
		{"user:123", "v1", 1700000000000000, false, 1},
		{"\x00\xff", "\xc0\xde", -5, true, 3},
		{"k", "", 9223372036854775807, false, 4},
		{"last", "no newline at the end", 1, false, 5},
	}
	r := NewReader(strings.NewReader(in))
	var row engine.Row
	for i, w := range want {
		if err := r.NextRow(&row); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if string(row.Key) != w.key || string(row.Value) != w.value || row.TS != w.ts || row.Deleted != w.deleted {
			t.Fatalf("row %d: got {%q %q %d %v}, want %+v", i, row.Key, row.Value, row.TS, row.Deleted, w)
		}
		if r.Line() != w.line {
			t.Fatalf("row %d: line %d, want %d", i, r.Line(), w.line)
		}
	}
	if err := r.NextRow(&row); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last row: %v, want io.EOF", err)
	}
}

func TestReaderErrors(t *testing.T) {
	good := `{"key": "a", "ts": 1}` + "\n"
	tests := []struct {
		name, line, want string
	}{
		{"not json", `{"key": "a", "ts": 1`, "line 2"},
		{"unknown field", `{"key": "a", "ts": 1, "tss": 2}`, "tss"},
		{"no key", `{"value": "a", "ts": 1}`, "no key"},
		{"no ts", `{"key": "a"}`, "no ts"},
		{"both key forms", `{"key": "a", "key_hex": "61", "ts": 1}`, "both"},
		{"bad hex", `{"key_hex": "6", "ts": 1}`, "key_hex"},
		{"ts overflow", `{"key": "a", "ts": 9223372036854775808}`, "not an int64"},
		{"ts fraction", `{"key": "a", "ts": 1.5}`, "not an int64"},
		{"ts string", `{"key": "a", "ts": "1"}`, "line 2"},
		{"invalid utf-8", "{\"key\": \"\xff\", \"ts\": 1}", "UTF-8"},
		{"two values", `{"key": "a", "ts": 1} {"key": "b", "ts": 2}`, "more than one"},
		{"array", `[1,2]`, "line 2"},
		{"field name case", `{"KEY": "a", "ts": 1}`, "unknown field"},
		{"field twice", `{"key": "a", "key": "b", "ts": 1}`, "twice"},
		{"trailing brace", `{"key": "a", "ts": 1}}`, "more than one"},
		{"trailing bracket", `{"key": "a", "ts": 1}]`, "more than one"},
		{"lone high surrogate", `{"key": "\ud800", "ts": 1}`, "surrogate"},
		{"lone low surrogate", `{"key": "\udc00x", "ts": 1}`, "surrogate"},
		{"long line", `{"key": "` + strings.Repeat("x", 200) + `", "ts": 1}`, "longer than the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(good + tc.line + "\n" + good))
			r.SetMaxLine(128)
			var row engine.Row
			if err := r.NextRow(&row); err != nil {
				t.Fatalf("first row: %v", err)
			}
			err := r.NextRow(&row)
			if !errors.Is(err, ErrBadRow) {
				t.Fatalf("got %v, want ErrBadRow", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line 2") {
				t.Fatalf("error %q does not name %q and line 2", err, tc.want)
			}
		})
	}
}

// TestReaderLongLine checks a line longer than the read buffer but inside
// the limit is read whole.
func TestReaderLongLine(t *testing.T) {
	v := strings.Repeat("v", 200_000)
	r := NewReader(strings.NewReader(`{"key": "a", "value": "` + v + `", "ts": 1}` + "\n" + `{"key": "b", "ts": 2}`))
	var row engine.Row
	if err := r.NextRow(&row); err != nil || string(row.Value) != v {
		t.Fatalf("long row: err %v, value length %d", err, len(row.Value))
	}
	if err := r.NextRow(&row); err != nil || string(row.Key) != "b" || r.Line() != 2 {
		t.Fatalf("row after the long one: err %v, key %q, line %d", err, row.Key, r.Line())
	}
}

// TestReaderEscapes: a surrogate pair is one character, and an escaped
// backslash before "u" is not an escape.
func TestReaderEscapes(t *testing.T) {
	in := `{"key": "\ud83d\ude00", "ts": 1}
{"key": "a\\ud800", "ts": 2}`
	r := NewReader(strings.NewReader(in))
	var row engine.Row
	for _, want := range []string{"😀", `a\ud800`} {
		if err := r.NextRow(&row); err != nil || string(row.Key) != want {
			t.Fatalf("got %q, %v; want %q", row.Key, err, want)
		}
	}
}

// TestReaderKeyLimit: a key of exactly engine.MaxKeyBytes is read, one byte
// more is refused on its own line, in both key forms and in changes, so a
// node never accepts a row no repair could move.
func TestReaderKeyLimit(t *testing.T) {
	at := strings.Repeat("k", engine.MaxKeyBytes)
	over := at + "k"
	tests := []struct {
		name, line string
		change     bool
		ok         bool
	}{
		{"key at the limit", `{"key": "` + at + `", "ts": 1}`, false, true},
		{"key over the limit", `{"key": "` + over + `", "ts": 1}`, false, false},
		{"key_hex over the limit", `{"key_hex": "` + strings.Repeat("6b", engine.MaxKeyBytes+1) + `", "ts": 1}`, false, false},
		{"change key at the limit", `{"op": "put", "key": "` + at + `", "ts": 1}`, true, true},
		{"change key over the limit", `{"op": "put", "key": "` + over + `", "ts": 1}`, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := `{"key": "a", "ts": 1}`
			if tc.change {
				first = `{"op": "put", "key": "a", "ts": 1}`
			}
			r := NewReader(strings.NewReader(first + "\n\n" + tc.line + "\n"))
			next := func() error {
				if tc.change {
					var c Change
					return r.NextChange(&c)
				}
				var row engine.Row
				return r.NextRow(&row)
			}
			if err := next(); err != nil {
				t.Fatalf("first line: %v", err)
			}
			err := next()
			if tc.ok {
				if err != nil {
					t.Fatalf("key of %d bytes refused: %v", engine.MaxKeyBytes, err)
				}
				return
			}
			if !errors.Is(err, ErrBadRow) || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "over the limit of 65536") {
				t.Fatalf("got %v, want ErrBadRow naming line 3 and the limit", err)
			}
		})
	}
}
