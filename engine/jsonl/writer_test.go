package jsonl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/antientropy/grove/engine"
)

// roundTrip writes rows with a Writer and reads them back with a Reader.
func roundTrip(t testing.TB, rows []engine.Row) ([]engine.Row, []byte) {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out)
	for i := range rows {
		if err := w.WriteRow(&rows[i]); err != nil {
			t.Fatalf("WriteRow %d: %v", i, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	text := out.Bytes()
	r := NewReader(bytes.NewReader(text))
	r.SetMaxLine(math.MaxInt)
	var got []engine.Row
	for {
		var row engine.Row
		err := r.NextRow(&row)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading back row %d: %v\n%s", len(got), err, text)
		}
		got = append(got, engine.Row{
			Key: bytes.Clone(row.Key), Value: bytes.Clone(row.Value), TS: row.TS, Deleted: row.Deleted,
		})
	}
	return got, text
}

func sameRow(a, b *engine.Row) bool {
	return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.TS == b.TS && a.Deleted == b.Deleted
}

func checkRoundTrip(t testing.TB, rows []engine.Row) []byte {
	t.Helper()
	got, text := roundTrip(t, rows)
	if len(got) != len(rows) {
		t.Fatalf("wrote %d rows, read back %d:\n%s", len(rows), len(got), text)
	}
	for i := range rows {
		if !sameRow(&got[i], &rows[i]) {
			t.Fatalf("row %d: wrote {%q %q %d %v}, read {%q %q %d %v}\n%s", i,
				rows[i].Key, rows[i].Value, rows[i].TS, rows[i].Deleted,
				got[i].Key, got[i].Value, got[i].TS, got[i].Deleted, text)
		}
	}
	return text
}

func TestWriterRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		row  engine.Row
		line string // the exact line, when it matters; "" skips the check
	}{
		{"plain", engine.Row{Key: []byte("user:123"), Value: []byte("v1"), TS: 1700000000000000},
			`{"key":"user:123","value":"v1","ts":1700000000000000,"deleted":false}`},
		{"tombstone", engine.Row{Key: []byte("k"), TS: 5, Deleted: true},
			`{"key":"k","value":"","ts":5,"deleted":true}`},
		{"empty key and value", engine.Row{TS: 0},
			`{"key":"","value":"","ts":0,"deleted":false}`},
		{"nil and empty value", engine.Row{Key: []byte("k"), Value: []byte{}, TS: 1}, ""},
		{"negative ts", engine.Row{Key: []byte("k"), TS: -42}, `{"key":"k","value":"","ts":-42,"deleted":false}`},
		{"min ts", engine.Row{Key: []byte("k"), TS: math.MinInt64}, ""},
		{"max ts", engine.Row{Key: []byte("k"), TS: math.MaxInt64}, ""},
		{"binary key", engine.Row{Key: []byte{0x00, 0xff, 0x80}, Value: []byte("v"), TS: 1},
			`{"key_hex":"00ff80","value":"v","ts":1,"deleted":false}`},
		{"binary value", engine.Row{Key: []byte("k"), Value: []byte{0xc0, 0xde}, TS: 1},
			`{"key":"k","value_hex":"c0de","ts":1,"deleted":false}`},
		{"both binary", engine.Row{Key: []byte{0xfe}, Value: []byte{0xff}, TS: 1, Deleted: true}, ""},
		{"unicode", engine.Row{Key: []byte("ключ 😀"), Value: []byte("値\u2028\u2029\ufffd\uffff"), TS: 1}, ""},
		{"quotes and backslashes", engine.Row{Key: []byte(`a"b\c`), Value: []byte(`\"\\u0041\ud800`), TS: 1},
			`{"key":"a\"b\\c","value":"\\\"\\\\u0041\\ud800","ts":1,"deleted":false}`},
		{"control characters", engine.Row{Key: []byte("\x00\x01\t\n\r\x1f\x7f"), Value: []byte("\b\f"), TS: 1},
			`{"key":"\u0000\u0001\t\n\r\u001f` + "\x7f" + `","value":"\u0008\u000c","ts":1,"deleted":false}`},
		{"invalid utf-8: truncated rune", engine.Row{Key: []byte("ab\xe2\x82"), TS: 1}, ""},
		{"invalid utf-8: encoded surrogate", engine.Row{Key: []byte("\xed\xa0\x80"), TS: 1},
			`{"key_hex":"eda080","value":"","ts":1,"deleted":false}`},
		{"invalid utf-8: overlong", engine.Row{Key: []byte("\xc0\xaf"), Value: []byte("ok"), TS: 1}, ""},
		{"json-looking text", engine.Row{Key: []byte(`{"key":"x","ts":1}`), Value: []byte("\n{}\n"), TS: 1}, ""},
		{"long value", engine.Row{Key: []byte("k"), Value: bytes.Repeat([]byte("x\"\xff"), 100_000), TS: 1}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := checkRoundTrip(t, []engine.Row{tc.row})
			if tc.line != "" && string(text) != tc.line+"\n" {
				t.Fatalf("line\n%s\nwant\n%s", text, tc.line)
			}
			if bytes.Count(text, []byte("\n")) != 1 {
				t.Fatalf("not exactly one line: %q", text)
			}
		})
	}
	// All of them at once, across buffer flushes.
	var all []engine.Row
	for range 3 {
		for _, tc := range tests {
			all = append(all, tc.row)
		}
	}
	checkRoundTrip(t, all)
}

// TestWriterRandom: Reader(Writer(rows)) == rows for random rows, mixing
// random bytes, UTF-8 with the characters that need escaping, and rows long
// enough to cross the writer's buffer.
func TestWriterRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		rows := make([]engine.Row, rng.IntN(400))
		for i := range rows {
			rows[i] = randomRow(rng)
		}
		if round == 0 {
			rows = append(rows, engine.Row{Key: []byte("k"), Value: randomBytes(rng, 3*writerBufSize), TS: 1})
		}
		checkRoundTrip(t, rows)
	}
}

// alphabet holds what the writer must get right: escapes, multi-byte runes,
// and bytes that make a string invalid UTF-8.
var alphabet = [][]byte{
	[]byte("a"), []byte("Z"), []byte(" "), []byte(`"`), []byte(`\`), []byte("/"), []byte("\x00"),
	[]byte("\n"), []byte("\r"), []byte("\t"), []byte("\x1f"), []byte("\x7f"), []byte("é"),
	[]byte("😀"), []byte("\u2028"), []byte("\ufeff"), []byte("<"), []byte("u"), []byte("\\u"),
	[]byte("\xff"), []byte("\x80"), []byte("\xed\xa0\x80"),
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, 0, n)
	switch rng.IntN(3) {
	case 0: // raw random bytes: almost always hex
		for range n {
			b = append(b, byte(rng.Uint32()))
		}
	case 1: // valid UTF-8 only: always text
		for len(b) < n {
			if s := alphabet[rng.IntN(len(alphabet))]; utf8.Valid(s) {
				b = append(b, s...)
			}
		}
	default: // mostly text, sometimes with an invalid byte
		for len(b) < n {
			b = append(b, alphabet[rng.IntN(len(alphabet))]...)
		}
	}
	return b
}

func randomRow(rng *rand.Rand) engine.Row {
	var r engine.Row
	r.Key = randomBytes(rng, rng.IntN(20))
	if rng.IntN(4) > 0 {
		r.Value = randomBytes(rng, rng.IntN(60))
	}
	switch rng.IntN(4) {
	case 0:
		r.TS = int64(rng.Uint64())
	case 1:
		r.TS = []int64{0, -1, 1, math.MinInt64, math.MaxInt64}[rng.IntN(5)]
	default:
		r.TS = 1700000000000000 + rng.Int64N(1e12)
	}
	r.Deleted = rng.IntN(3) == 0
	return r
}

type failWriter struct{ calls int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	f.calls++
	return 0, errDisk
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// TestWriterErrors: a failed write is returned, wrapped, by that call and
// every later one; a nil row is an error, not a panic.
func TestWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		w    io.Writer
		want error
	}{
		{"write fails", &failWriter{}, errDisk},
		{"short write", shortWriter{}, io.ErrShortWrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(tc.w)
			row := engine.Row{Key: []byte("k"), TS: 1}
			if err := w.WriteRow(&row); err != nil {
				t.Fatalf("buffered WriteRow: %v", err)
			}
			if err := w.Flush(); !errors.Is(err, tc.want) {
				t.Fatalf("Flush: %v, want %v", err, tc.want)
			}
			if err := w.WriteRow(&row); !errors.Is(err, tc.want) {
				t.Fatalf("WriteRow after a failure: %v, want %v", err, tc.want)
			}
			if err := w.Flush(); !errors.Is(err, tc.want) {
				t.Fatalf("Flush after a failure: %v, want %v", err, tc.want)
			}
		})
	}
	fw := &failWriter{}
	w := NewWriter(fw)
	if err := w.WriteRow(nil); !errors.Is(err, ErrBadRow) {
		t.Fatalf("nil row: %v, want ErrBadRow", err)
	}
	if err := w.Flush(); err != nil || fw.calls != 0 {
		t.Fatalf("flush after a nil row: %v, %d writes; want nothing written", err, fw.calls)
	}
}

// TestWriterBuffers: rows reach the io.Writer in large writes, not one per
// row, and only whole lines are written.
func TestWriterBuffers(t *testing.T) {
	cw := &countWriter{}
	w := NewWriter(cw)
	row := engine.Row{Key: []byte("user:0000000"), Value: []byte("value"), TS: 1}
	const n = 10_000
	for range n {
		if err := w.WriteRow(&row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	line := len(appendRow(nil, &row))
	if cw.bytes != n*line {
		t.Fatalf("wrote %d bytes, want %d", cw.bytes, n*line)
	}
	if max := n*line/writerBufSize + 1; cw.writes > max {
		t.Fatalf("%d writes for %d bytes, want at most %d", cw.writes, cw.bytes, max)
	}
	if cw.partial {
		t.Fatal("a write ended inside a line")
	}
	if allocs := testing.AllocsPerRun(1000, func() { _ = w.WriteRow(&row) }); allocs > 0 {
		t.Fatalf("WriteRow allocates %.1f times per row", allocs)
	}
}

type countWriter struct {
	writes, bytes int
	partial       bool
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.writes++
	c.bytes += len(p)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		c.partial = true
	}
	return len(p), nil
}

func BenchmarkWriter(b *testing.B) {
	rows := make([]engine.Row, 1000)
	for i := range rows {
		rows[i] = engine.Row{Key: fmt.Appendf(nil, "user:%08d", i), Value: []byte(strings.Repeat("v", 40)), TS: 1700000000000000 + int64(i)}
	}
	w := NewWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		for i := range rows {
			if err := w.WriteRow(&rows[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}

// FuzzWriterRoundTrip: whatever the row, the Reader gives back exactly what
// the Writer wrote.
func FuzzWriterRoundTrip(f *testing.F) {
	f.Add([]byte("user:1"), []byte("v"), int64(1700000000000000), false)
	f.Add([]byte{}, []byte{}, int64(0), true)
	f.Add([]byte("\x00\xff"), []byte(`"\`+"\n"), int64(math.MinInt64), false)
	f.Add([]byte("😀\u2028"), []byte("\xed\xa0\x80"), int64(-1), true)
	f.Add([]byte(`\ud800`), []byte("\x1f\x7f"), int64(math.MaxInt64), false)
	f.Fuzz(func(t *testing.T, key, value []byte, ts int64, deleted bool) {
		row := engine.Row{Key: key, Value: value, TS: ts, Deleted: deleted}
		checkRoundTrip(t, []engine.Row{row, row})
	})
}
