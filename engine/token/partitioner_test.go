package token

import (
	"errors"
	"math"
	"testing"
)

func TestByIDByName(t *testing.T) {
	for _, c := range []struct {
		p    Partitioner
		id   uint8
		name string
	}{{Murmur3{}, 1, "murmur3"}, {ByteOrdered{}, 2, "bytes"}} {
		if c.p.ID() != c.id || c.p.Name() != c.name {
			t.Errorf("%T: id %d name %q, want %d %q", c.p, c.p.ID(), c.p.Name(), c.id, c.name)
		}
		byID, err := ByID(c.id)
		if err != nil || byID != c.p {
			t.Errorf("ByID(%d) = %v, %v", c.id, byID, err)
		}
		byName, err := ByName(c.name)
		if err != nil || byName != c.p {
			t.Errorf("ByName(%q) = %v, %v", c.name, byName, err)
		}
		r := c.p.Range()
		if r.Valid() != nil || r.Lo != math.MinInt64 || r.Hi != math.MaxInt64 {
			t.Errorf("%T.Range() = %v", c.p, r)
		}
	}
	for _, id := range []uint8{0, 3, 255} {
		if p, err := ByID(id); p != nil || !errors.Is(err, ErrUnknownPartitioner) {
			t.Errorf("ByID(%d) = %v, %v", id, p, err)
		}
	}
	for _, name := range []string{"", "Murmur3", "murmur3 ", "org.apache.cassandra.dht.Murmur3Partitioner", "random"} {
		if p, err := ByName(name); p != nil || !errors.Is(err, ErrUnknownPartitioner) {
			t.Errorf("ByName(%q) = %v, %v", name, p, err)
		}
	}
}
