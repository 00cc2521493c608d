package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/antientropy/grove/engine/token"
)

// KeyDiff lists the exact keys in which two row sets differ: "here" is the
// first set given to CompareKeys, "there" the second, as in a repair
// session's Result.
type KeyDiff struct {
	OnlyHere  []Key // present here, absent there
	OnlyThere []Key // present there, absent here
	Different []Key // present in both with a different value, timestamp or tombstone

	// Here and There count the rows each side had inside the compared
	// ranges: what two peers would exchange (keys and digests) to find
	// these keys.
	Here, There RangeRows
}

// RangeRows counts the rows of one side inside the compared ranges.
type RangeRows struct {
	Rows     int
	KeyBytes int64
}

// Identical reports whether no key differs.
func (k *KeyDiff) Identical() bool {
	return len(k.OnlyHere)+len(k.OnlyThere)+len(k.Different) == 0
}

// Key is a row key and its token.
type Key struct {
	Key   []byte
	Token token.Token
}

// CompareKeys reads both row sources from start to end and keeps, and
// compares row by row, only the rows whose tokens fall inside ranges — the
// differing ranges a Diff returned. Its memory grows with the difference;
// its work does not: every row of both sources is read and its token
// computed, so a caller with an ordered store should scan only the ranges
// instead (as a repair session does). Keys come out in token order (then
// byte order).
//
// Each side is treated as a multiset of rows: a key is Different when its
// rows on the two sides are not the same multiset (a key stored twice on one
// side and once on the other differs, just as its leaf sums do).
func CompareKeys(ctx context.Context, p token.Partitioner, ranges []token.Range, here, there RowSource) (*KeyDiff, error) {
	if !slices.IsSortedFunc(ranges, func(x, y token.Range) int { return cmp.Compare(x.Lo, y.Lo) }) {
		return nil, fmt.Errorf("engine: CompareKeys: ranges must be in ring order")
	}
	out := &KeyDiff{}
	ra, err := collectRows(ctx, p, ranges, here, &out.Here)
	if err != nil {
		return nil, fmt.Errorf("engine: reading side A: %w", err)
	}
	rb, err := collectRows(ctx, p, ranges, there, &out.There)
	if err != nil {
		return nil, fmt.Errorf("engine: reading side B: %w", err)
	}
	for k, da := range ra {
		db, ok := rb[k]
		key := Key{Key: []byte(k), Token: p.Token([]byte(k))}
		switch {
		case !ok:
			out.OnlyHere = append(out.OnlyHere, key)
		case !slices.Equal(da, db):
			out.Different = append(out.Different, key)
		}
	}
	for k := range rb {
		if _, ok := ra[k]; !ok {
			out.OnlyThere = append(out.OnlyThere, Key{Key: []byte(k), Token: p.Token([]byte(k))})
		}
	}
	for _, l := range [][]Key{out.OnlyHere, out.OnlyThere, out.Different} {
		sort.Slice(l, func(i, j int) bool {
			if l[i].Token != l[j].Token {
				return l[i].Token < l[j].Token
			}
			return bytes.Compare(l[i].Key, l[j].Key) < 0
		})
	}
	return out, nil
}

// collectRows keeps, per key, the sorted digests of the rows of src whose
// tokens lie in ranges.
func collectRows(ctx context.Context, p token.Partitioner, ranges []token.Range, src RowSource, stats *RangeRows) (map[string][]Digest, error) {
	out := make(map[string][]Digest)
	var (
		r Row
		h Hasher
	)
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := src.NextRow(&r); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if !inRanges(ranges, p.Token(r.Key)) {
			continue
		}
		d := h.Digest(&r)
		stats.Rows++
		stats.KeyBytes += int64(len(r.Key))
		l := append(out[string(r.Key)], d)
		slices.SortFunc(l, func(x, y Digest) int { return bytes.Compare(x[:], y[:]) })
		out[string(r.Key)] = l
	}
	return out, nil
}

// inRanges reports whether t lies in one of the sorted, disjoint ranges.
func inRanges(ranges []token.Range, t token.Token) bool {
	// The first range whose Hi is at or past t is the only candidate.
	i := sort.Search(len(ranges), func(i int) bool { return ranges[i].Hi >= t })
	return i < len(ranges) && ranges[i].Contains(t)
}
