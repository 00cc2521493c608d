package engine

import "testing"

// TestSupersedes checks Cassandra's reconciliation rule case by case, both
// ways round: the answer must be antisymmetric, and identical versions
// supersede neither way.
func TestSupersedes(t *testing.T) {
	cases := []struct {
		name string
		a, b Row // a should win
	}{
		{"newer timestamp", Row{Value: []byte("a"), TS: 2}, Row{Value: []byte("z"), TS: 1}},
		{"newer live beats older tombstone", Row{Value: []byte("a"), TS: 2}, Row{TS: 1, Deleted: true}},
		{"newer tombstone beats older live", Row{TS: 2, Deleted: true}, Row{Value: []byte("a"), TS: 1}},
		{"tie: tombstone beats live", Row{TS: 5, Deleted: true}, Row{Value: []byte("zzz"), TS: 5}},
		{"tie: greater value", Row{Value: []byte("b"), TS: 5}, Row{Value: []byte("a"), TS: 5}},
		{"tie: longer value with a common prefix", Row{Value: []byte("ab"), TS: 5}, Row{Value: []byte("a"), TS: 5}},
		{"tie: value bytes compared unsigned", Row{Value: []byte{0x80}, TS: 5}, Row{Value: []byte{0x7f}, TS: 5}},
		{"negative timestamps", Row{Value: []byte("a"), TS: -1}, Row{Value: []byte("b"), TS: -2}},
	}
	for _, tc := range cases {
		if !Supersedes(&tc.a, &tc.b) {
			t.Errorf("%s: a does not supersede b", tc.name)
		}
		if Supersedes(&tc.b, &tc.a) {
			t.Errorf("%s: b supersedes a too", tc.name)
		}
	}
	same := Row{Key: []byte("k"), Value: []byte("v"), TS: 3}
	if Supersedes(&same, &same) {
		t.Error("a version supersedes itself")
	}
}
