package bench

import (
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// MaxCorpusRows is the most rows NewCorpus generates: key offsets are 32-bit,
// and 100 M keys of at most 32 bytes stay below 4 GiB.
const MaxCorpusRows = 100_000_000

// Shape of the generated rows.
const (
	minKeyLen    = 16
	maxKeyLen    = 32
	minValueLen  = 56 // values are 56..72 bytes, 64 on average
	maxValueLen  = 72
	valuePoolLen = 64 << 10 // values are windows into this many random bytes
	baseTS       = 1_700_000_000_000_000
	tombstonePct = 1 // percent of rows that are tombstones (empty value)
)

// keyAlphabet holds the 64 characters keys are made of, 6 random bits each.
const keyAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"

// Order is an order in which a Corpus yields its rows.
type Order int

const (
	// TokenOrder yields rows by ascending Murmur3 token, as a scan of one
	// Cassandra SSTable (or of a whole token range) would: consecutive rows
	// fall in the same or the next leaf.
	TokenOrder Order = iota
	// RandomOrder yields rows in the order they were generated, which is
	// random with respect to their tokens, as writes arriving from clients
	// would be: consecutive rows fall in unrelated leaves.
	RandomOrder
)

// String names the order as the report does: "sorted" or "random".
func (o Order) String() string {
	switch o {
	case TokenOrder:
		return "sorted"
	case RandomOrder:
		return "random"
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// Corpus is a deterministic set of rows for benchmarks: keys of 16 to 32
// bytes, values of about 64 bytes, microsecond timestamps and about 1%
// tombstones, generated from a seed.
//
// It is compact and puts no per-row object on the Go heap. The keys are
// stored twice, back to back in one buffer per order with a 32-bit end offset
// per row: once in the order they were generated, which is random with
// respect to their tokens (RandomOrder), and once sorted by token
// (TokenOrder). Either order is thus read sequentially, as a scan or a stream
// of writes would deliver it, so that the measurements see where the rows
// land in the tree and not how the harness stores them: reading keys through
// a shuffled index instead costs more cache and TLB misses than hashing the
// row. A value is a window into a 64 KiB pool of random bytes; its length and
// position, the timestamp and the tombstone flag are derived from the row's
// generation index by a hash, so they take no memory. Ten million rows take
// about 600 MB, in pointer-free slices the garbage collector never scans.
//
// A Corpus is read-only once made, so any number of Sources may read it at
// once.
type Corpus struct {
	seed   uint64
	random layout // generation order: ids are the positions
	sorted layout // token order
	pool   []byte // value bytes
}

// layout holds the keys of every row in one order.
type layout struct {
	keys []byte   // every key, back to back
	ends []uint32 // the key at position i is keys[ends[i]:ends[i+1]]
	ids  []uint32 // generation index of the row at position i; nil: i
}

// NewCorpus generates n rows from seed. The same n and seed always give the
// same rows in the same orders.
func NewCorpus(n int, seed uint64) (*Corpus, error) {
	if n < 0 || n > MaxCorpusRows {
		return nil, fmt.Errorf("bench: corpus of %d rows: want 0..%d", n, MaxCorpusRows)
	}
	c := &Corpus{seed: seed, pool: make([]byte, valuePoolLen+maxValueLen)}
	pool := rand.New(rand.NewPCG(seed, 0x706f6f6c)) // "pool"
	for i := 0; i < len(c.pool); i += 8 {
		x := pool.Uint64()
		for j := i; j < min(i+8, len(c.pool)); j++ {
			c.pool[j] = byte(x)
			x >>= 8
		}
	}

	// Generate the keys in order, noting each one's token; sort the
	// generation indices by token, then copy the keys in that order.
	type tokID struct {
		tok token.Token
		id  uint32
	}
	pairs := make([]tokID, n)
	r := &c.random
	total := 0
	for j := range n {
		total += keyLen(seed, uint64(j))
	}
	r.keys = make([]byte, 0, total)
	r.ends = make([]uint32, 1, n+1)
	for j := range n {
		from := len(r.keys)
		r.keys = genKey(r.keys, seed, uint64(j))
		r.ends = append(r.ends, uint32(len(r.keys)))
		pairs[j] = tokID{token.Murmur3{}.Token(r.keys[from:]), uint32(j)}
	}
	slices.SortFunc(pairs, func(a, b tokID) int {
		if c := cmp.Compare(a.tok, b.tok); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	s := &c.sorted
	s.keys = make([]byte, 0, len(r.keys))
	s.ends = make([]uint32, 1, n+1)
	s.ids = make([]uint32, n)
	for i, p := range pairs {
		s.keys = append(s.keys, r.key(int(p.id))...)
		s.ends = append(s.ends, uint32(len(s.keys)))
		s.ids[i] = p.id
	}
	return c, nil
}

func (l *layout) key(i int) []byte { return l.keys[l.ends[i]:l.ends[i+1]:l.ends[i+1]] }

// genKey appends the key of generation index j: 16 to 32 characters from
// keyAlphabet.
func genKey(dst []byte, seed, j uint64) []byte {
	h := keyHash(seed, j)
	for n := keyLen(seed, j); n > 0; {
		h = splitmix(h)
		x := h
		for range min(n, 10) {
			dst = append(dst, keyAlphabet[x&63])
			x >>= 6
			n--
		}
	}
	return dst
}

// keyHash seeds the key of generation index j.
func keyHash(seed, j uint64) uint64 { return splitmix(seed ^ j*0xd1b54a32d192ed03) }

// keyLen is the length of the key of generation index j.
func keyLen(seed, j uint64) int {
	return minKeyLen + int(keyHash(seed, j)%(maxKeyLen-minKeyLen+1))
}

// splitmix is SplitMix64's output function: a fast, well-mixed hash of x.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Len is the number of rows.
func (c *Corpus) Len() int { return len(c.random.ends) - 1 }

// Bytes is the memory the corpus holds on the Go heap.
func (c *Corpus) Bytes() int64 {
	n := 0
	for _, l := range []*layout{&c.random, &c.sorted} {
		n += cap(l.keys) + 4*cap(l.ends) + 4*cap(l.ids)
	}
	return int64(n + cap(c.pool))
}

// Row sets r to row i, counting in token order. The slices it puts in r point
// into the corpus: they stay valid, and must not be modified. It does not
// allocate.
func (c *Corpus) Row(i int, r *engine.Row) { c.row(&c.sorted, i, r) }

// row sets r to the row at position i of layout l.
func (c *Corpus) row(l *layout, i int, r *engine.Row) {
	r.Key = l.key(i)
	id := uint64(i)
	if l.ids != nil {
		id = uint64(l.ids[i])
	}
	h := splitmix(c.seed ^ id*0x9e3779b97f4a7c15 ^ 0x726f77) // "row"
	r.TS = baseTS + int64(h>>40)
	r.Deleted = (h&0xffff)%100 < tombstonePct
	if r.Deleted {
		r.Value = nil
		return
	}
	vl := minValueLen + int((h>>16&0xff)%(maxValueLen-minValueLen+1))
	off := int(h >> 24 & (valuePoolLen - 1))
	r.Value = c.pool[off : off+vl : off+vl]
}

// Source returns a RowSource over positions [from, to) of order o. Sources
// over disjoint position ranges of one order yield disjoint sets of rows, so
// they can feed parallel adders; both orders hold the same rows.
func (c *Corpus) Source(o Order, from, to int) *Source {
	if from < 0 || to > c.Len() || from > to {
		panic(fmt.Sprintf("bench: Source(%d, %d) of a corpus of %d rows", from, to, c.Len()))
	}
	l := &c.sorted
	if o == RandomOrder {
		l = &c.random
	}
	return &Source{c: c, l: l, i: from, end: to}
}

// split returns parts sources over consecutive, disjoint, near-equal slices
// of order o that together cover every row.
func (c *Corpus) split(o Order, parts int) []engine.RowSource {
	srcs := make([]engine.RowSource, parts)
	n := c.Len()
	for w := range parts {
		srcs[w] = c.Source(o, n*w/parts, n*(w+1)/parts)
	}
	return srcs
}

// Source yields rows of a Corpus; see Corpus.Source. It implements
// engine.RowSource and allocates nothing per row. A Source is not safe for
// concurrent use: give each goroutine its own.
type Source struct {
	c      *Corpus
	l      *layout
	i, end int
}

// NextRow sets r to the next row, or returns io.EOF after the last.
func (s *Source) NextRow(r *engine.Row) error {
	if s.i >= s.end {
		return io.EOF
	}
	s.c.row(s.l, s.i, r)
	s.i++
	return nil
}
