package engine

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestFormatDocVectors reads the row-encoding test vectors from
// docs/FORMAT.md and checks each against the engine and crypto/sha256, so the
// document stays true.
func TestFormatDocVectors(t *testing.T) {
	f, err := os.Open("../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var digests []Digest
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) != 8 || !strings.Contains(cells[5], "`01") {
			continue
		}
		field := func(i int) []byte {
			c := strings.TrimSpace(cells[i])
			if strings.HasPrefix(c, "(empty)") {
				return []byte{}
			}
			c = c[1 : strings.Index(c[1:], "`")+1]
			b, err := hex.DecodeString(c)
			if err != nil {
				t.Fatalf("cell %q: %v", cells[i], err)
			}
			return b
		}
		ts, err := strconv.ParseInt(strings.TrimSpace(cells[3]), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		r := Row{Key: field(1), Value: field(2), TS: ts, Deleted: strings.TrimSpace(cells[4]) == "yes"}
		enc, want := field(5), field(6)
		if got := AppendEncoding(nil, &r); string(got) != string(enc) {
			t.Errorf("row %q: encoding %x, FORMAT.md says %x", r.Key, got, enc)
		}
		if got := RowDigest(&r); string(got[:]) != string(want) {
			t.Errorf("row %q: digest %x, FORMAT.md says %x", r.Key, got, want)
		}
		if sum := sha256.Sum256(enc); string(sum[:]) != string(want) {
			t.Errorf("row %q: FORMAT.md digest is not SHA-256 of its encoding", r.Key)
		}
		digests = append(digests, Digest(want))
	}
	if len(digests) != 4 {
		t.Fatalf("found %d row vectors in FORMAT.md, want 4", len(digests))
	}
	// The leaf and inner-node vectors, through the engine's own code paths.
	var leaf [32]byte
	addLeaf(leaf[:], &digests[0], false)
	addLeaf(leaf[:], &digests[1], false)
	mustEqualHex(t, "leaf sum", leaf[:], "559d25aabecde3fa3e8e22d969f2d18be760ec046904cca3368b793b73227b03")
	tr, err := New(Options{Depth: 1, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	copy(tr.node(1, 0), digests[0][:])
	copy(tr.node(1, 1), digests[1][:])
	if err := hashLevels(t.Context(), &tr.shape, 1); err != nil {
		t.Fatal(err)
	}
	mustEqualHex(t, "inner node", tr.node(0, 0), "2d32402e9fff9e6d0bc44077ce8bb32d141a132ebca17027c2a8add62b9ac120")
	// Adding then removing a row leaves the leaf as it was.
	addLeaf(leaf[:], &digests[2], false)
	addLeaf(leaf[:], &digests[2], true)
	mustEqualHex(t, "add then subtract", leaf[:], "559d25aabecde3fa3e8e22d969f2d18be760ec046904cca3368b793b73227b03")
	doc, _ := os.ReadFile("../docs/FORMAT.md")
	for _, v := range []string{"559d25aabecde3fa3e8e22d969f2d18be760ec046904cca3368b793b73227b03", "2d32402e9fff9e6d0bc44077ce8bb32d141a132ebca17027c2a8add62b9ac120"} {
		if !strings.Contains(string(doc), v) {
			t.Errorf("FORMAT.md lacks vector %s", v)
		}
	}
}

func mustEqualHex(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if hex.EncodeToString(got) != want {
		t.Errorf("%s: %x, want %s", what, got, want)
	}
}
