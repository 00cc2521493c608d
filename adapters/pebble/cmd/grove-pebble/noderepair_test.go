package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/ring"
	"github.com/antientropy/grove/rpc"
)

// TestCommandRepair: n1 of testRing, its peers n2 and n4 served at the
// ring's addresses, holds rows that differ from theirs (writes each side
// missed, values one side holds older). repair --db of n1 finds exactly
// those keys with each peer, repairs them (exit 1), and a second run finds
// everything in sync (exit 0); with n4 down, its ranges fail alone (exit 2)
// and the JSON says so.
func TestCommandRepair(t *testing.T) {
	dir := t.TempDir()
	addrs := map[string]string{}
	text := testRing
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		addrs[id] = freeAddr(t)
		text = strings.Replace(text, `"http://127.0.0.1:`+id[1:]+`"`, `"http://`+addrs[id]+`"`, 1)
	}
	ringPath := filepath.Join(dir, "ring.json")
	if err := os.WriteFile(ringPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rg, err := ring.Load(ringPath)
	if err != nil {
		t.Fatal(err)
	}
	// Each key goes to its range's two replicas; n1 misses some writes, its
	// peers others, and some versions n1 holds are older.
	lines := map[string][]string{}
	want := map[string]map[string]bool{} // peer → keys n1 must find differing
	for _, id := range []string{"n2", "n4"} {
		want[id] = map[string]bool{}
	}
	for i := 0; i < 3000; i++ {
		k := fmt.Sprintf("k-%d", i)
		tok := token.Murmur3{}.Token([]byte(k))
		var reps []string
		for _, r := range rg.Ranges() {
			if r.Range.Contains(tok) {
				reps = r.Replicas
			}
		}
		for _, id := range reps {
			if slices.Contains(reps, "n1") && id != "n1" && i%20 < 3 {
				want[id][k] = true
			}
			ts := 2
			switch {
			case id == "n1" && i%20 == 0:
				continue // n1 missed it
			case id != "n1" && slices.Contains(reps, "n1") && i%20 == 1:
				continue // the peer missed it
			case id == "n1" && i%20 == 2:
				ts = 1 // n1 holds an older version
			}
			lines[id] = append(lines[id], fmt.Sprintf(`{"key": %q, "value": "v%d", "ts": %d}`, k, ts, ts))
		}
	}
	db := func(id string) string { return filepath.Join(dir, id) }
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		if code, _, errs := runCmd(t, "load", "--db", db(id), "--rows", writeRows(t, dir, id+".jsonl", lines[id]), "--ring", ringPath, "--node", id); code != exitOK {
			t.Fatalf("load %s: %s", id, errs)
		}
	}
	servers := map[string]*served{}
	for _, id := range []string{"n2", "n3", "n4"} {
		servers[id] = startServeAt(t, addrs[id], "serve", "--db", db(id), "--ring", ringPath, "--node", id)
	}
	type report struct {
		Peers []struct {
			ID              string
			Ranges          int
			RangesDiffering int `json:"ranges_differing"`
			RangesFailed    int `json:"ranges_failed"`
			Error           string
		}
		RangesRepaired int `json:"ranges_repaired"`
		RangesFailed   int `json:"ranges_failed"`
	}
	type keysOnly struct {
		Peers []struct {
			ID        string
			OnlyHere  []struct{ Key string } `json:"only_here"`
			OnlyThere []struct{ Key string } `json:"only_there"`
			Different []struct{ Key string } `json:"different"`
		}
	}
	repairN1 := func() (int, string, string) {
		return runCmd(t, "repair", "--db", db("n1"), "--ring", ringPath, "--node", "n1", "--json")
	}
	code, out, errs := repairN1()
	var rep report
	var keys keysOnly
	if code != exitDifferent || json.Unmarshal([]byte(out), &rep) != nil || json.Unmarshal([]byte(out), &keys) != nil {
		t.Fatalf("first repair: exit %d, %q %q; want 1 and a report", code, out, errs)
	}
	if rep.RangesFailed != 0 || len(rep.Peers) != 2 {
		t.Fatalf("first repair: %+v; want n2 and n4, nothing failed", rep)
	}
	for _, p := range keys.Peers {
		got := map[string]bool{}
		for _, l := range [][]struct{ Key string }{p.OnlyHere, p.OnlyThere, p.Different} {
			for _, k := range l {
				got[k.Key] = true
			}
		}
		if len(got) != len(want[p.ID]) {
			t.Errorf("with %s: %d keys found, want %d", p.ID, len(got), len(want[p.ID]))
		}
		for k := range want[p.ID] {
			if !got[k] {
				t.Errorf("with %s: key %s not found", p.ID, k)
			}
		}
	}
	code, out, errs = runCmd(t, "repair", "--db", db("n1"), "--ring", ringPath, "--node", "n1", "--stream-rate", "0.5")
	if code != exitOK {
		t.Fatalf("second repair, at 0.5 MB/s: exit %d, %q %q; want 0, all in sync", code, out, errs)
	}
	for _, bad := range []string{"-1", "NaN", "+Inf"} {
		if code, _, errs := runCmd(t, "repair", "--db", db("n1"), "--ring", ringPath, "--node", "n1", "--stream-rate", bad); code != exitError || !strings.Contains(errs, "--stream-rate") {
			t.Errorf("--stream-rate %s: exit %d, %q; want 2 naming the flag", bad, code, errs)
		}
	}

	// Served, n1 is asked to repair itself over its admin service: a write
	// n2 took and n1 missed is found and repaired.
	servers["n1"] = startServeAt(t, addrs["n1"], "serve", "--db", db("n1"), "--ring", ringPath, "--node", "n1")
	var missed string
	for i := 0; missed == ""; i++ {
		k := fmt.Sprintf("late-%d", i)
		tok := token.Murmur3{}.Token([]byte(k))
		for _, r := range rg.Ranges() {
			if r.Range.Contains(tok) && slices.Contains(r.Replicas, "n1") && slices.Contains(r.Replicas, "n2") {
				missed = k
			}
		}
	}
	rc, err := rpc.NewRowClient("http://"+addrs["n2"], rpc.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.CloseIdle()
	if ok, err := rc.Put(context.Background(), []byte(missed), []byte("late"), 3); !ok || err != nil {
		t.Fatalf("write to n2: %v, %v", ok, err)
	}
	code, out, errs = runCmd(t, "repair", "--ring", ringPath, "--node", "n1", "--json")
	keys = keysOnly{}
	if code != exitDifferent || json.Unmarshal([]byte(out), &keys) != nil {
		t.Fatalf("repair of the running n1: exit %d, %q %q; want 1 and a report", code, out, errs)
	}
	for _, p := range keys.Peers {
		if n := len(p.OnlyHere) + len(p.OnlyThere) + len(p.Different); (p.ID == "n2") != (n == 1) || (p.ID == "n2" && p.OnlyThere[0].Key != missed) {
			t.Errorf("repair of the running n1, with %s: %+v; want only %s, only there at n2", p.ID, p, missed)
		}
	}
	if code, out, errs := runCmd(t, "repair", "--ring", ringPath, "--node", "n1"); code != exitOK || !strings.Contains(out, "node n1: 5 ranges repaired, 0 failed") {
		t.Fatalf("second repair of the running n1: exit %d, %q %q", code, out, errs)
	}
	if c, e := servers["n1"].stop(); c != exitOK {
		t.Fatalf("serve n1: exit %d, %s", c, e)
	}

	if c, e := servers["n4"].stop(); c != exitOK {
		t.Fatalf("serve n4: exit %d, %s", c, e)
	}
	code, out, _ = repairN1()
	rep = report{}
	if code != exitError || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("repair with n4 down: exit %d, %q; want 2 and a report", code, out)
	}
	for _, p := range rep.Peers {
		if (p.ID == "n4") != (p.RangesFailed == p.Ranges && p.Error != "") || (p.ID == "n2" && p.RangesFailed != 0) {
			t.Errorf("with n4 down, peer %s: %+v", p.ID, p)
		}
	}
	for _, id := range []string{"n2", "n3"} {
		if c, e := servers[id].stop(); c != exitOK {
			t.Fatalf("serve %s: exit %d, %s", id, c, e)
		}
	}
	for _, id := range []string{"n1", "n2", "n4"} {
		if code, _, errs := runCmd(t, "verify", "--db", db(id), "--ring", ringPath, "--node", id); code != exitOK {
			t.Errorf("verify %s: %s", id, errs)
		}
	}
}
