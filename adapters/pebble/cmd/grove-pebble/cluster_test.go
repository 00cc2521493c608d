package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/antientropy/grove/coord"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/ring"
	"github.com/antientropy/grove/ring/ringtest"
	"github.com/antientropy/grove/rpc"
)

// clusterNode is one grove-pebble serve process of a test cluster.
type clusterNode struct {
	id, addr, db string
	cmd          *exec.Cmd
	stderr       *bytes.Buffer
}

// cluster is the processes of a ring and the rows Cassandra's rule picks
// for each key the test wrote.
type cluster struct {
	t        *testing.T
	bin      string
	ringPath string
	ring     *ring.Ring
	nodes    map[string]*clusterNode
	want     map[string]engine.Row
}

// start runs node n's serve process and waits until it serves.
func (c *cluster) start(n *clusterNode) {
	c.t.Helper()
	n.cmd = exec.Command(c.bin, "serve", "--create", "--db", n.db, "--listen", n.addr, "--ring", c.ringPath, "--node", n.id, "--checkpoint-rows", "2000", "--budget", "256MiB")
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	n.stderr = &bytes.Buffer{}
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "serving ") {
		n.cmd.Process.Kill()
		n.cmd.Wait()
		c.t.Fatalf("serve %s: %q, stderr %q", n.id, lines.Text(), n.stderr.String())
	}
	go func() {
		for lines.Scan() {
		}
	}()
}

// stop ends node n: with SIGTERM, or SIGKILL when kill is set.
func (c *cluster) stop(n *clusterNode, kill bool) {
	c.t.Helper()
	if n.cmd == nil {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	n.cmd.Process.Signal(sig)
	err := n.cmd.Wait()
	n.cmd = nil
	if !kill && err != nil {
		c.t.Fatalf("serve %s: %v, stderr %q", n.id, err, n.stderr.String())
	}
}

// replicas returns the nodes that hold key.
func (c *cluster) replicas(key []byte) []string {
	tok := token.Murmur3{}.Token(key)
	for _, r := range c.ring.Ranges() {
		if r.Range.Contains(tok) {
			return r.Replicas
		}
	}
	return nil
}

// write sends each node its rows through its RowService, in batches, and
// records every version sent in the oracle.
func (c *cluster) write(rows map[string][]engine.Row) {
	c.t.Helper()
	ctx := context.Background()
	for id, rs := range rows {
		rc, err := rpc.NewRowClient("http://"+c.nodes[id].addr, rpc.ClientOptions{})
		if err != nil {
			c.t.Fatal(err)
		}
		for i := 0; i < len(rs); i += 500 {
			if _, err := rc.Apply(ctx, rs[i:min(i+500, len(rs))]); err != nil {
				c.t.Fatalf("write to %s: %v", id, err)
			}
		}
		rc.CloseIdle()
		for _, r := range rs {
			if w, ok := c.want[string(r.Key)]; !ok || engine.Supersedes(&r, &w) {
				c.want[string(r.Key)] = r
			}
		}
	}
}

// repairAll runs `grove-pebble repair` against every running node, one
// after another, and returns their reports and the exit statuses.
func (c *cluster) repairAll() ([]coord.Report, []int) {
	c.t.Helper()
	var reps []coord.Report
	var codes []int
	for _, n := range c.ring.Nodes() {
		code, out, errs := runBin(c.t, c.bin, "repair", "--ring", c.ringPath, "--node", n.ID, "--json")
		var rep coord.Report
		if json.Unmarshal([]byte(out), &rep) != nil {
			c.t.Fatalf("repair %s: exit %d, %q %q", n.ID, code, out, errs)
		}
		reps, codes = append(reps, rep), append(codes, code)
	}
	return reps, codes
}

// checkConverged stops every node, dumps its database and checks that it
// holds exactly the rows Cassandra's rule picks for the keys of its ranges,
// then starts the nodes again.
func (c *cluster) checkConverged() {
	c.t.Helper()
	for _, n := range c.nodes {
		c.stop(n, false)
	}
	for _, n := range c.nodes {
		code, out, errs := runBin(c.t, c.bin, "dump", "--db", n.db)
		if code != exitOK {
			c.t.Fatalf("dump %s: %q", n.id, errs)
		}
		got := map[string]engine.Row{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var r struct {
				Key, Value string
				TS         int64
				Deleted    bool
			}
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				c.t.Fatalf("dump %s: %q: %v", n.id, l, err)
			}
			got[r.Key] = engine.Row{Value: []byte(r.Value), TS: r.TS, Deleted: r.Deleted}
		}
		held := 0
		for k, w := range c.want {
			if !slices.Contains(c.replicas([]byte(k)), n.id) {
				continue
			}
			held++
			g, ok := got[k]
			if !ok || !bytes.Equal(g.Value, w.Value) || g.TS != w.TS || g.Deleted != w.Deleted {
				c.t.Errorf("node %s, key %s: holds %+v (%v), want %+v", n.id, k, g, ok, w)
			}
		}
		if len(got) != held {
			c.t.Errorf("node %s holds %d rows, want %d", n.id, len(got), held)
		}
	}
	for _, n := range c.nodes {
		c.start(n)
	}
}

// TestCluster: six grove-pebble serve processes, 16 tokens each, RF 3. A
// coordinator in the test writes each row to its three replicas through
// their write service and drops some: writes a replica missed, a node down
// for a window, a delete one replica missed, a value sent to one replica
// only with other bytes at the same timestamp. `grove-pebble repair` on
// every node then leaves every replica with the rows Cassandra's rule
// picks, and a second run finds everything in sync. Then again with a node
// killed -9 in the middle of its repair and restarted: another run
// converges.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs six server processes")
	}
	keys := envInt("GROVE_CLUSTER_KEYS", 12_000)
	bin := buildCommand(t)
	dir := t.TempDir()
	text := string(ringtest.JSON(6, 16, 3, 31))
	c := &cluster{t: t, bin: bin, nodes: map[string]*clusterNode{}, want: map[string]engine.Row{}}
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("n%d", i)
		n := &clusterNode{id: id, addr: freeAddr(t), db: filepath.Join(dir, id)}
		text = strings.Replace(text, fmt.Sprintf(`"http://127.0.0.1:%d"`, 7100+i), `"http://`+n.addr+`"`, 1)
		c.nodes[id] = n
	}
	c.ringPath = filepath.Join(dir, "ring.json")
	if err := os.WriteFile(c.ringPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if c.ring, err = ring.Load(c.ringPath); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		c.start(n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.stop(n, true)
		}
	})

	rnd := rand.New(rand.NewPCG(31, 1))
	rows := map[string][]engine.Row{}
	send := func(id string, r engine.Row) { rows[id] = append(rows[id], r) }
	planted := map[string]int{}
	for i := range keys {
		k := fmt.Appendf(nil, "key-%d", i)
		row := engine.Row{Key: k, Value: fmt.Appendf(nil, "value-%d", i), TS: 100}
		reps := c.replicas(k)
		switch p := rnd.IntN(100); {
		case p < 2: // a write one replica missed
			planted["missed write"]++
			for _, id := range reps[1:] {
				send(id, row)
			}
		case p < 3: // a value one replica got with other bytes, same timestamp
			planted["corrupted value"]++
			send(reps[0], engine.Row{Key: k, Value: fmt.Appendf(nil, "VALUE-%d", i), TS: 100})
			for _, id := range reps[1:] {
				send(id, row)
			}
		default:
			for _, id := range reps {
				send(id, row)
			}
		}
	}
	c.write(rows)
	// A delete one replica missed.
	rows = map[string][]engine.Row{}
	for i := 0; i < keys; i += 97 {
		k := fmt.Appendf(nil, "key-%d", i)
		planted["missed delete"]++
		for _, id := range c.replicas(k)[:2] {
			send(id, engine.Row{Key: k, Value: []byte("gone"), TS: 200, Deleted: true})
		}
	}
	c.write(rows)
	// A node down for a window: the writes meant for it are lost.
	down := c.nodes["n3"]
	c.stop(down, false)
	rows = map[string][]engine.Row{}
	for i := keys; i < keys+keys/10; i++ {
		k := fmt.Appendf(nil, "key-%d", i)
		for _, id := range c.replicas(k) {
			if id == "n3" {
				planted["written while n3 was down"]++
				continue
			}
			send(id, engine.Row{Key: k, Value: []byte("late"), TS: 300})
		}
	}
	c.write(rows)
	c.start(down)
	t.Logf("planted: %v", planted)

	began := time.Now()
	reps, codes := c.repairAll()
	took := time.Since(began)
	var sent, received int64
	var trips, ranges, found int
	for i, rep := range reps {
		if codes[i] == exitError || rep.RangesFailed != 0 {
			t.Fatalf("repair of %s: exit %d, %+v", c.ring.Nodes()[i].ID, codes[i], rep)
		}
		for _, p := range rep.Peers {
			sent += p.BytesSent
			received += p.BytesReceived
			trips += p.RoundTrips
			ranges += p.Ranges
			found += len(p.OnlyHere) + len(p.OnlyThere) + len(p.Different)
		}
	}
	if found == 0 {
		t.Fatal("the first round found no difference")
	}
	// Cassandra's model for the same run: for each (range, peer) pair, a
	// Merkle tree from each side at one leaf per row (at most 2^20 leaves,
	// ~36 B each), and every row of each differing leaf streamed both ways
	// — one row per leaf here, so the differing rows themselves.
	var model int64
	for _, r := range c.ring.Ranges() {
		n := 0
		for k := range c.want {
			if r.Range.Contains(token.Murmur3{}.Token([]byte(k))) {
				n++
			}
		}
		depth := min(20, int(math.Ceil(math.Log2(float64(max(n, 2))))))
		pairs := len(r.Replicas) * (len(r.Replicas) - 1) // each node repairs with each peer
		model += int64(pairs) * 2 * 36 << depth
	}
	t.Logf("first round: 6 repairs, %d (range, peer) pairs, %d keys found, %d B sent + %d B received, %d round trips, %v; Cassandra model: %d B of Merkle trees alone",
		ranges, found, sent, received, trips, took.Round(time.Millisecond), model)
	c.checkConverged()
	reps, codes = c.repairAll()
	for i, rep := range reps {
		if codes[i] != exitOK || rep.Differences() {
			t.Fatalf("second round, %s: exit %d, %+v; want everything in sync", c.ring.Nodes()[i].ID, codes[i], rep)
		}
	}

	// Again, with n1 killed -9 in the middle of its repair.
	rows = map[string][]engine.Row{}
	for i := 0; i < keys; i += 13 {
		k := fmt.Appendf(nil, "key-%d", i)
		reps := c.replicas(k)
		send(reps[rnd.IntN(len(reps))], engine.Row{Key: k, Value: []byte("newer"), TS: 400})
	}
	c.write(rows)
	victim := c.nodes["n1"]
	repairing := exec.Command(bin, "repair", "--ring", c.ringPath, "--node", "n1", "--json")
	if err := repairing.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(20+rnd.IntN(200)) * time.Millisecond)
	c.stop(victim, true)
	repairing.Wait()
	c.start(victim)
	for round := 1; ; round++ {
		reps, codes = c.repairAll()
		failed := slices.Contains(codes, exitError)
		if !failed {
			break
		}
		if round == 2 {
			t.Fatalf("after the kill: repairs still fail: %v %+v", codes, reps)
		}
	}
	c.checkConverged()
	reps, codes = c.repairAll()
	for i, rep := range reps {
		if codes[i] != exitOK || rep.Differences() {
			t.Fatalf("after the kill, second round, %s: exit %d, %+v", c.ring.Nodes()[i].ID, codes[i], rep)
		}
	}
}
