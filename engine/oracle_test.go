package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"

	"github.com/antientropy/grove/engine/token"
)

// The oracle: the definitions of docs/FORMAT.md written out again the slow, plain
// way, with crypto/sha256 and no shared code, so the engine is checked
// against the definitions rather than against itself.

func oracleEncode(r Row) []byte {
	var b []byte
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Key)))
	b = append(b, r.Key...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(r.Value)))
	b = append(b, r.Value...)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.TS))
	if r.Deleted {
		return append(b, 1)
	}
	return append(b, 0)
}

// oracleLevels returns every level of the tree over rows: levels[depth] the
// leaves, levels[0] the root.
func oracleLevels(rows []Row, rng token.Range, depth int) [][][32]byte {
	leaves := make([][32]byte, 1<<depth)
	var p token.Murmur3
	bounds := leafBounds(rng, depth)
	for _, r := range rows {
		d := sha256.Sum256(oracleEncode(r))
		tok := p.Token(r.Key)
		// Find the leaf by searching the math/big boundaries, not by LeafOf.
		i := sort.Search(len(bounds), func(i int) bool { return bounds[i].Hi >= tok })
		if i == len(bounds) || !bounds[i].Contains(tok) {
			panic(fmt.Sprintf("oracle: token %d outside %s", tok, rng))
		}
		for lane := range 4 {
			v := binary.LittleEndian.Uint64(leaves[i][8*lane:]) + binary.LittleEndian.Uint64(d[8*lane:])
			binary.LittleEndian.PutUint64(leaves[i][8*lane:], v)
		}
	}
	levels := make([][][32]byte, depth+1)
	levels[depth] = leaves
	for l := depth - 1; l >= 0; l-- {
		levels[l] = make([][32]byte, 1<<l)
		for i := range levels[l] {
			levels[l][i] = sha256.Sum256(append(levels[l+1][2*i][:], levels[l+1][2*i+1][:]...))
		}
	}
	return levels
}

// leafBounds splits rng into 2^depth leaves with math/big: boundary i is
// lo + floor(width*i / 2^depth).
func leafBounds(rng token.Range, depth int) []token.Range {
	w := new(big.Int).SetUint64(uint64(rng.Hi - rng.Lo))
	bound := func(i int) int64 {
		b := new(big.Int).Mul(w, big.NewInt(int64(i)))
		b.Rsh(b, uint(depth))
		return rng.Lo + int64(b.Uint64())
	}
	out := make([]token.Range, 1<<depth)
	for i := range out {
		out[i] = token.Range{Lo: bound(i), Hi: bound(i + 1)}
	}
	return out
}

// randomRows makes n rows with distinct random keys (1..40 bytes), values,
// timestamps and tombstones.
func randomRows(rnd *rand.Rand, n int) []Row {
	rows := make([]Row, n)
	seen := make(map[string]bool, n)
	for i := range rows {
		k := make([]byte, 1+rnd.IntN(40))
		for j := range k {
			k[j] = byte(rnd.Uint32())
		}
		if seen[string(k)] {
			k = binary.BigEndian.AppendUint64(k, uint64(i))
		}
		seen[string(k)] = true
		v := make([]byte, rnd.IntN(100))
		for j := range v {
			v[j] = byte(rnd.Uint32())
		}
		rows[i] = Row{Key: k, Value: v, TS: rnd.Int64(), Deleted: rnd.IntN(10) == 0}
	}
	return rows
}
