package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/rpc"
)

// RepairConfig describes one repair scenario: two replicas of Rows rows, of
// which Differ keys diverge, synced over loopback through the Connect/gRPC
// transport.
type RepairConfig struct {
	Rows   int
	Differ int
	// Depth of both trees; 0 means 20.
	Depth int
	// Repair makes the session repair both sides, not only find the keys.
	Repair bool
	Seed   uint64
}

// RepairFigures is what a repair scenario cost, beside models of what
// Apache Cassandra's and ScyllaDB's repairs would move for the same data.
type RepairFigures struct {
	Rows          int `json:"rows"`
	DifferingKeys int `json:"differing_keys"`
	Depth         int `json:"depth"`
	// Protocol message bytes, as repair.Stats counts them.
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
	// RowBytes is the part of those that are the differing rows themselves.
	RowBytes int64 `json:"row_bytes"`
	// ProtocolBytesPerKey is (sent + received − row bytes) per differing key.
	ProtocolBytesPerKey float64 `json:"protocol_bytes_per_key"`
	RoundTrips          int     `json:"round_trips"`
	// WireBytes is what crossed the loopback socket both ways: the messages
	// plus HTTP/2 and gRPC framing.
	WireBytes int64         `json:"wire_bytes"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	Converged bool          `json:"converged"`
	Bands     []repair.Band `json:"bands"`
	// Result is the session's own report: the keys, what was applied.
	Result *repair.Result `json:"-"`

	// CassandraTreeBytes is one whole Merkle tree at the same depth, as
	// Cassandra sends each replica's to the coordinator (~36 bytes a leaf:
	// the issue's ~36 MB at depth 20); one crosses the network when the
	// coordinator is one of the two replicas.
	CassandraTreeBytes int64 `json:"cassandra_tree_bytes"`
	// CassandraStreamBytes is every row of every differing leaf, both ways:
	// Cassandra streams whole mismatched ranges (over-streaming).
	CassandraStreamBytes int64 `json:"cassandra_stream_bytes"`
	// RowHashBytes models a row-level repair in the manner of ScyllaDB's at
	// the same leaf granularity: both sides send an 8-byte hash of every row
	// in each differing leaf, then the differing rows.
	RowHashBytes int64 `json:"row_hash_bytes"`
}

// replicaRows yields the rows of one replica of a repair scenario, made from
// their index so that no copy of the data sits on the heap.
type replicaRows struct {
	n     int
	seed  uint64
	plan  map[int]int // row index → divergence kind, on replica B only
	extra []int       // indices of rows only B has (kind 4)
	b     bool
	i     int
	key   []byte
	value [32]byte
}

const repairBaseTS = 1_700_000_000_000_000

func (s *replicaRows) NextRow(r *engine.Row) error {
	for {
		if s.i >= s.n+len(s.extra) {
			return io.EOF
		}
		i := s.i
		s.i++
		if i >= s.n {
			if !s.b {
				return io.EOF
			}
			i = s.extra[i-s.n]
		}
		kind := -1
		if s.b {
			if k, ok := s.plan[i]; ok {
				kind = k
			}
		}
		if kind == 0 && i < s.n { // a write B missed
			continue
		}
		s.key = strconv.AppendInt(append(s.key[:0], "user:"...), int64(i), 10)
		x := s.seed ^ uint64(i)*0x9e3779b97f4a7c15
		for j := 0; j < 32; j += 8 {
			x = splitmix(x)
			binary.LittleEndian.PutUint64(s.value[j:], x)
		}
		*r = engine.Row{Key: s.key, Value: s.value[:], TS: repairBaseTS + int64(i%1_000_000)}
		switch kind {
		case 1: // B holds a newer write A missed
			r.Value, r.TS = []byte("rewritten"), r.TS+1000
		case 2: // B missed a delete: A's tombstone is newer
		case 3: // a corrupted value on B, same timestamp
			s.value[0] ^= 0xff
		}
		return nil
	}
}

// sourceA yields replica A: the base rows, with the deletes B missed.
type sourceA struct {
	replicaRows
}

func (s *sourceA) NextRow(r *engine.Row) error {
	if err := s.replicaRows.NextRow(r); err != nil {
		return err
	}
	if k, ok := s.plan[s.i-1]; ok && k == 2 {
		r.Deleted, r.Value, r.TS = true, nil, r.TS+500
	}
	return nil
}

// newRepairReplicas builds the two replicas of a scenario.
func newRepairReplicas(ctx context.Context, cfg RepairConfig, budget *arena.Budget) (a, b *rowstore.Replica, err error) {
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0x72657061))
	plan := make(map[int]int, cfg.Differ)
	var extra []int
	for len(plan)+len(extra) < cfg.Differ {
		kind := rnd.IntN(5)
		if kind == 4 {
			extra = append(extra, cfg.Rows+len(extra))
			continue
		}
		plan[rnd.IntN(cfg.Rows)] = kind
	}
	build := func(src engine.RowSource) (*rowstore.Replica, error) {
		st, err := rowstore.Load(ctx, token.Murmur3{}, src)
		if err != nil {
			return nil, err
		}
		t, err := rowstore.BuildTree(ctx, st, engine.Options{Depth: cfg.Depth, Budget: budget})
		if err != nil {
			return nil, err
		}
		return rowstore.NewReplica(st, t), nil
	}
	a, err = build(&sourceA{replicaRows{n: cfg.Rows, seed: cfg.Seed, plan: plan}})
	if err != nil {
		return nil, nil, err
	}
	b, err = build(&replicaRows{n: cfg.Rows, seed: cfg.Seed, plan: plan, extra: extra, b: true})
	if err != nil {
		a.Tree().Close()
		return nil, nil, err
	}
	return a, b, nil
}

// models prices the Cassandra and row-hash approaches on the scenario's
// differing leaves.
func models(ctx context.Context, a, b *rowstore.Replica, f *RepairFigures) error {
	d, err := engine.Diff(ctx, a.Tree(), b.Tree())
	if err != nil {
		return err
	}
	f.CassandraTreeBytes = int64(36) << d.Depth
	for _, r := range d.Ranges {
		for _, side := range []*rowstore.Replica{a, b} {
			err := side.Store().Scan(ctx, r, func(row *engine.Row) error {
				f.CassandraStreamBytes += int64(engine.EncodedLen(row))
				f.RowHashBytes += 8
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// RunRepair builds the scenario's replicas, serves B over loopback, syncs A
// against it, and reports the cost.
func RunRepair(ctx context.Context, cfg RepairConfig) (*RepairFigures, error) {
	if cfg.Depth == 0 {
		cfg.Depth = 20
	}
	budget := arena.NewBudget(2 << 30)
	a, b, err := newRepairReplicas(ctx, cfg, budget)
	if err != nil {
		return nil, err
	}
	defer a.Tree().Close()
	defer b.Tree().Close()
	f, err := SyncLoopback(ctx, a, b, repair.Options{Repair: cfg.Repair})
	if err != nil {
		return nil, err
	}
	f.Rows = cfg.Rows
	return f, nil
}

// SyncLoopback serves replica b on a loopback port through the rpc
// transport, syncs a against it, and reports the cost, with the Cassandra and
// row-hash models computed on the differing leaves before the session.
func SyncLoopback(ctx context.Context, a, b *rowstore.Replica, opts repair.Options) (*RepairFigures, error) {
	f := &RepairFigures{Depth: min(a.Tree().Depth(), b.Tree().Depth())}
	if err := models(ctx, a, b, f); err != nil {
		return nil, err
	}
	responder := repair.NewResponder(b, repair.ResponderOptions{})
	defer responder.Shutdown()
	mux := http.NewServeMux()
	mux.Handle(rpc.NewHandler(responder, rpc.HandlerOptions{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := rpc.NewServer(mux, nil)
	go srv.Serve(ln)
	defer srv.Close()
	client, err := rpc.NewClient("http://"+ln.Addr().String(), rpc.ClientOptions{})
	if err != nil {
		return nil, err
	}
	defer client.CloseIdle()
	start := time.Now()
	res, err := repair.Sync(ctx, a, client, opts)
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	f.Elapsed = time.Since(start)
	f.DifferingKeys = len(res.OnlyHere) + len(res.OnlyThere) + len(res.Different)
	f.BytesSent, f.BytesReceived = res.BytesSent, res.BytesReceived
	f.RowBytes = res.RowBytesSent + res.RowBytesReceived
	f.RowHashBytes += f.RowBytes
	f.RoundTrips, f.Converged, f.Bands = res.RoundTrips, res.Converged, res.Bands
	st := client.Stats()
	f.WireBytes = st.WireBytesWritten + st.WireBytesRead
	f.Result = res
	if f.DifferingKeys > 0 {
		f.ProtocolBytesPerKey = float64(f.BytesSent+f.BytesReceived-f.RowBytes) / float64(f.DifferingKeys)
	}
	return f, nil
}
