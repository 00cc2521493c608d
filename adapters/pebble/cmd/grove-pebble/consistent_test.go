package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConsistentAsOfReported: after sync --repair of n1 with n2, inspect
// says each of n1's ranges shared with n2 — its one peer at RF 2 — is
// consistent as of the sync, and the others never were; serve's /metrics
// exports the age of each of the served node's ranges.
func TestConsistentAsOfReported(t *testing.T) {
	dir := t.TempDir()
	ringPath := filepath.Join(dir, "ring.json")
	db1, db2 := filepath.Join(dir, "n1"), filepath.Join(dir, "n2")
	// n2's address is known only once it serves: the ring is written then.
	lines, _ := ringKeys("k", 500, true)
	if err := os.WriteFile(ringPath, []byte(testRing), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ db, id string }{{db1, "n1"}, {db2, "n2"}} {
		// Each node loads the rows of its own ranges only.
		var mine []string
		for _, l := range lines {
			var r struct{ Key string }
			json.Unmarshal([]byte(l), &r)
			nr, err := (&ringFlags{path: &ringPath, node: &n.id}).load()
			if err != nil {
				t.Fatal(err)
			}
			if nr.holds(nr.ring.Partitioner().Token([]byte(r.Key))) {
				mine = append(mine, l)
			}
		}
		if code, _, errs := runCmd(t, "load", "--db", n.db, "--rows", writeRows(t, dir, n.id+".jsonl", mine), "--ring", ringPath, "--node", n.id); code != exitOK {
			t.Fatal(errs)
		}
	}
	addr, srv := startServe(t, "serve", "--db", db2, "--ring", ringPath, "--node", "n2")
	ring2 := strings.Replace(testRing, "http://127.0.0.1:2", "http://"+addr, 1)
	ring2Path := filepath.Join(dir, "ring2.json")
	if err := os.WriteFile(ring2Path, []byte(ring2), 0o644); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	if code, out, errs := runCmd(t, "sync", "--db", db1, "--ring", ring2Path, "--node", "n1", "--peer", "n2", "--repair"); code == exitError {
		t.Fatalf("sync: %q %q", out, errs)
	}
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	n2 := "n2"
	nr2, err := (&ringFlags{path: &ringPath, node: &n2}).load()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(body), "grove_range_consistent_age_seconds{"); n != len(nr2.replicas) {
		t.Errorf("/metrics has %d range ages, want one for each of n2's %d ranges:\n%s", n, len(nr2.replicas), body)
	}
	if !strings.Contains(string(body), `grove_range_consistent_age_seconds{hi=`) || !strings.Contains(string(body), "+Inf") {
		t.Errorf("/metrics: want every range of n2, which never initiated a repair, at +Inf:\n%s", body)
	}
	if code, errs := srv.stop(); code != exitOK {
		t.Fatalf("serve: exit %d, %s", code, errs)
	}

	code, out, errs := runCmd(t, "inspect", "--db", db1, "--ring", ringPath, "--node", "n1", "--json")
	if code != exitOK {
		t.Fatalf("inspect: %q", errs)
	}
	var rep struct {
		RangesDetail []struct {
			Lo, Hi         string
			Peers          []string
			ConsistentAsOf *time.Time `json:"consistent_as_of"`
		} `json:"ranges_detail"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	withN2 := 0
	for _, d := range rep.RangesDetail {
		shared := fmt.Sprint(d.Peers) == "[n2]"
		switch {
		case shared && (d.ConsistentAsOf == nil || d.ConsistentAsOf.Before(before) || d.ConsistentAsOf.After(time.Now())):
			t.Errorf("range (%s, %s], shared with n2: consistent as of %v, want the sync's time", d.Lo, d.Hi, d.ConsistentAsOf)
		case !shared && d.ConsistentAsOf != nil:
			t.Errorf("range (%s, %s] with peers %v: consistent as of %v, want null (never synced)", d.Lo, d.Hi, d.Peers, d.ConsistentAsOf)
		}
		if shared {
			withN2++
		}
	}
	if withN2 == 0 {
		t.Fatal("n1 shares no range with n2")
	}
}
