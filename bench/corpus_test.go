package bench

import (
	"bytes"
	"io"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

func mustCorpus(t testing.TB, n int) *Corpus {
	t.Helper()
	c, err := NewCorpus(n, DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCorpusShape(t *testing.T) {
	const n = 20_000
	c := mustCorpus(t, n)
	if c.Len() != n {
		t.Fatalf("Len %d, want %d", c.Len(), n)
	}
	var (
		r         engine.Row
		prev      token.Token
		tombs     int
		valueSum  int
		values    int
		keyLens   = map[int]bool{}
		seenPerm  = make([]bool, n)
		keyBytes  int
		distinctK = map[string]bool{}
	)
	for i := range n {
		c.Row(i, &r)
		if len(r.Key) < minKeyLen || len(r.Key) > maxKeyLen {
			t.Fatalf("row %d: key of %d bytes", i, len(r.Key))
		}
		keyLens[len(r.Key)] = true
		keyBytes += len(r.Key)
		distinctK[string(r.Key)] = true
		tok := token.Murmur3{}.Token(r.Key)
		if i > 0 && tok < prev {
			t.Fatalf("row %d: token %d after %d: not in token order", i, tok, prev)
		}
		prev = tok
		if r.TS < baseTS {
			t.Fatalf("row %d: ts %d", i, r.TS)
		}
		if r.Deleted {
			tombs++
			if len(r.Value) != 0 {
				t.Fatalf("row %d: tombstone with a %d-byte value", i, len(r.Value))
			}
		} else {
			if len(r.Value) < minValueLen || len(r.Value) > maxValueLen {
				t.Fatalf("row %d: value of %d bytes", i, len(r.Value))
			}
			valueSum += len(r.Value)
			values++
		}
		seenPerm[c.sorted.ids[i]] = true
	}
	if len(keyLens) != maxKeyLen-minKeyLen+1 {
		t.Errorf("%d distinct key lengths, want every one of %d..%d", len(keyLens), minKeyLen, maxKeyLen)
	}
	if len(distinctK) < n-1 {
		t.Errorf("%d distinct keys of %d", len(distinctK), n)
	}
	if avg := float64(valueSum) / float64(values); avg < 62 || avg > 66 {
		t.Errorf("values average %.1f bytes, want about 64", avg)
	}
	if pct := 100 * float64(tombs) / n; pct < 0.7 || pct > 1.3 {
		t.Errorf("%.2f%% tombstones, want about 1%%", pct)
	}
	for i, ok := range seenPerm {
		if !ok {
			t.Fatalf("token order never yields row %d", i)
		}
	}
	if want := int64(2*keyBytes + 2*4*(n+1) + 4*n + valuePoolLen + maxValueLen); c.Bytes() != want {
		t.Errorf("Bytes %d, want %d", c.Bytes(), want)
	}
}

func TestCorpusDeterministic(t *testing.T) {
	a, b := mustCorpus(t, 3000), mustCorpus(t, 3000)
	other, err := NewCorpus(3000, DefaultSeed+1)
	if err != nil {
		t.Fatal(err)
	}
	var ra, rb, ro engine.Row
	same := 0
	for _, o := range []Order{TokenOrder, RandomOrder} {
		sa, sb, so := a.Source(o, 0, 3000), b.Source(o, 0, 3000), other.Source(o, 0, 3000)
		for sa.NextRow(&ra) == nil {
			if sb.NextRow(&rb) != nil || so.NextRow(&ro) != nil {
				t.Fatal("sources of equal corpora end at different rows")
			}
			if !bytes.Equal(ra.Key, rb.Key) || !bytes.Equal(ra.Value, rb.Value) || ra.TS != rb.TS || ra.Deleted != rb.Deleted {
				t.Fatalf("%s order: same seed, different rows: %+v and %+v", o, ra, rb)
			}
			if bytes.Equal(ra.Key, ro.Key) {
				same++
			}
		}
	}
	if same > 0 {
		t.Errorf("another seed gave %d of the same keys at the same place", same)
	}
}

func TestSourceRanges(t *testing.T) {
	c := mustCorpus(t, 1000)
	for _, o := range []Order{TokenOrder, RandomOrder} {
		// Four sources over disjoint ranges yield every row once.
		seen := map[string]int{}
		var r engine.Row
		for _, src := range c.split(o, 4) {
			for {
				err := src.NextRow(&r)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				seen[string(r.Key)]++
			}
			if err := src.NextRow(&r); err != io.EOF {
				t.Errorf("%s: NextRow after the end: %v, want io.EOF", o, err)
			}
		}
		for i := range c.Len() {
			c.Row(i, &r)
			if seen[string(r.Key)] != 1 {
				t.Fatalf("%s: row %d yielded %d times", o, i, seen[string(r.Key)])
			}
		}
	}
	if o := Order(7).String(); o != "Order(7)" {
		t.Errorf("Order(7).String() = %q", o)
	}
	defer func() {
		if recover() == nil {
			t.Error("Source(0, 1001) of 1000 rows: no panic")
		}
	}()
	c.Source(TokenOrder, 0, 1001)
}

func TestNewCorpusBounds(t *testing.T) {
	for _, n := range []int{-1, MaxCorpusRows + 1} {
		if _, err := NewCorpus(n, 1); err == nil {
			t.Errorf("NewCorpus(%d): no error", n)
		}
	}
	c := mustCorpus(t, 0)
	var r engine.Row
	if err := c.Source(RandomOrder, 0, 0).NextRow(&r); err != io.EOF {
		t.Errorf("empty corpus: %v, want io.EOF", err)
	}
}

func TestSourceAllocs(t *testing.T) {
	c := mustCorpus(t, 1000)
	src := c.Source(RandomOrder, 0, 1000)
	var r engine.Row
	if n := testing.AllocsPerRun(500, func() {
		if src.NextRow(&r) != nil {
			src.i = 0
		}
	}); n != 0 {
		t.Errorf("NextRow allocates %v times per row", n)
	}
}
