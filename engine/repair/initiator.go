package repair

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/metrics"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// Options tune an initiator's session. The zero value finds the differing
// keys without repairing them.
type Options struct {
	// Repair makes both sides converge: the peer receives the rows it lacks
	// or holds older versions of, this side applies the peer's winners.
	Repair bool
	// KeysOnly asks the peer for its differing rows without their values
	// (digests instead), to find keys cheaply. Ignored when Repair is set.
	KeysOnly bool
	// MaxMessageBytes bounds the messages this side builds and the bands it
	// asks for. Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// FirstLevels is the span of the band the peer sends with its Hello
	// answer. Default 6.
	FirstLevels int
	// BandSlack is how many fingerprints a band may spend beyond what a
	// level-by-level walk would, to save round trips. Default 256 (1 KiB).
	BandSlack int
	// MaxPasses bounds the sessions run when a fingerprint collision hid a
	// difference (about 2^-32 per comparison) and the check at the end of a
	// session caught it. Default 3.
	MaxPasses int
	// Rand supplies the fingerprint salt. Default crypto/rand.
	Rand io.Reader
	// CommitBytes is how many bytes of rows are pushed before they are
	// committed as one atomic batch. Default CommitBytes.
	CommitBytes int
	// Metrics, if set, counts the session, its message bytes, round trips
	// and failure.
	Metrics *metrics.Set
	// MaxHeldBytes bounds the differing rows (both sides') the initiator
	// holds until it applies them. A repairing session that reaches half of
	// it repairs what it holds as one part — pushed and committed at the
	// peer, applied here — and goes on with the rest, so that a whole
	// missing replica streams through in parts, holding at most half this
	// and one Reconcile answer (MaxMessageBytes); a session that only lists
	// keys, and so applies nothing, fails with ErrLimit rather than let a
	// peer exhaust memory. Default 1 GiB.
	MaxHeldBytes int64
	// Subtree confines the session to one node of the range's tree (see
	// Subtree): it compares that node's sum, descends from it, and repairs
	// only the rows under it. The zero value is the whole range. Its level
	// may not pass the meeting depth: the session fails with
	// ErrIncompatible, before anything is compared, if it passes this
	// replica's depth, and the peer refuses it if it passes its own.
	Subtree Subtree
	// Progress, if set, is called as the session advances: after each band
	// of the descent, each run of reconciled leaves, each batch of rows
	// sent. It runs on the session's goroutine: keep it quick.
	Progress func(Progress)
}

// Progress says how far a session has got.
type Progress struct {
	// Stage is "descending" (Done of Total levels), "reconciling" (leaves)
	// or "repairing" (rows sent to the peer).
	Stage       string
	Done, Total int64
}

func (o *Options) report(stage string, done, total int) {
	if o.Progress != nil {
		o.Progress(Progress{Stage: stage, Done: int64(done), Total: int64(total)})
	}
}

func (o *Options) fill() {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.FirstLevels <= 0 {
		o.FirstLevels = 6
	}
	o.FirstLevels = min(o.FirstLevels, MaxBandLevels)
	if o.BandSlack < 0 {
		o.BandSlack = 0
	} else if o.BandSlack == 0 {
		o.BandSlack = 256
	}
	if o.MaxPasses <= 0 {
		o.MaxPasses = 3
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.CommitBytes <= 0 {
		o.CommitBytes = CommitBytes
	}
	if o.MaxHeldBytes <= 0 {
		o.MaxHeldBytes = 1 << 30
	}
	if o.Repair {
		o.KeysOnly = false
	}
}

// Stats count what a session cost.
type Stats struct {
	// BytesSent and BytesReceived are protocol message bytes (the encoded
	// size of each request and answer, by MessageBytes), whatever carries
	// them.
	BytesSent, BytesReceived int64
	// RowBytesSent and RowBytesReceived are the part of those that are the
	// differing rows themselves.
	RowBytesSent, RowBytesReceived int64
	// RoundTrips counts calls to the peer.
	RoundTrips int
}

// Add adds o's counts to s: the cost of several sessions.
func (s *Stats) Add(o Stats) {
	s.BytesSent += o.BytesSent
	s.BytesReceived += o.BytesReceived
	s.RowBytesSent += o.RowBytesSent
	s.RowBytesReceived += o.RowBytesReceived
	s.RoundTrips += o.RoundTrips
}

// Band describes one band of the descent, for reports and tuning.
type Band struct {
	Level    int // level of the band's nodes
	Levels   int // levels it spanned
	Frontier int // differing nodes it was sent under
	Differ   int // of its nodes, how many differed; of a probe's, how many it located
	// Probe marks a probe: one weight per frontier node instead of a band,
	// locating the lone differing descendant of the nodes that hide one.
	Probe bool `json:",omitempty"`
}

// Result is what a session found and did.
type Result struct {
	// InSync reports that the replicas agreed before any repair.
	InSync bool
	// Depth is the level the descent met at: the shallower tree's depth, at
	// most MaxSessionDepth.
	Depth int
	// DifferingLeaves is how many leaves differed at Depth.
	DifferingLeaves int
	// Level is the level whose differing nodes had their rows reconciled:
	// Depth, or deeper where leaves are dense and the session went on into
	// virtual sub-buckets of them (equal token widths of a leaf's span).
	Level int
	// OnlyHere, OnlyThere and Different are the exact keys, in ring order:
	// keys only this side has, keys only the peer has, and keys both have in
	// different versions.
	OnlyHere, OnlyThere, Different []engine.Key
	// Pushed is how many rows were sent for the peer to apply, PeerApplied
	// how many it wrote, Applied how many this side wrote.
	Pushed, PeerApplied, Applied int
	// Refused are differing keys longer than MaxKeyBytes, on either side:
	// they are listed among the keys above but never moved, so one such row
	// fails alone rather than failing the session. A repair that refused a
	// key does not converge (Converged stays false), and it is no error; the
	// final sum check still holds for every other row.
	Refused []engine.Key
	// Converged reports, after a repair, that both sides' sums agree.
	Converged bool
	// Parts is how many parts a repair too large to hold whole was applied
	// in before its last (Options.MaxHeldBytes); each is committed on both
	// sides as it goes.
	Parts int
	// Passes is how many sessions it took (more than one only after a
	// fingerprint collision was caught).
	Passes int
	// Bands traces the descent of the last pass.
	Bands []Band
	Stats
}

// Sync runs a session against peer as initiator and returns the keys in
// which the replicas differ; with opts.Repair it also makes them converge.
// Every call runs under ctx: give it a deadline. On an error nothing has been
// applied on this side, and the peer has applied nothing unless the error is
// ErrNotConverged (both sides applied their batches, yet their sums differ —
// writes raced the repair; run again), or the repair was too large to hold
// whole and was going in parts (Options.MaxHeldBytes): the parts already
// committed stay, each atomic on both sides, and the next session finds
// the rest.
func Sync(ctx context.Context, local Replica, peer Peer, opts Options) (_ *Result, err error) {
	opts.fill()
	res := &Result{}
	opts.Metrics.SessionStarted(metrics.Initiator)
	defer func() { opts.Metrics.SessionEnded(metrics.Initiator, err) }()
	for res.Passes < opts.MaxPasses {
		res.Passes++
		ok, err := (&initiator{local: local, peer: peer, opts: &opts, res: res}).pass(ctx)
		if err != nil {
			return res, err
		}
		if ok {
			return res, nil
		}
	}
	return res, fmt.Errorf("%w: %d sessions in a row ended with differences unaccounted for", ErrNotConverged, res.Passes)
}

type initiator struct {
	local   Replica
	peer    Peer
	opts    *Options
	res     *Result
	session []byte
	view    *engine.LeafView
	key     fpKey
	depth   int
	// level is the level of the nodes whose rows are reconciled: the
	// meeting depth, or below it inside dense leaves.
	level int
	// refusedGap is what the refused rows leave between the two sums after
	// a repair: the peer's versions of them less ours.
	refusedGap engine.Digest
	// parted is what the parts repaired before the session's end add to
	// our sum in its final check: their rows we lacked, less ours the peer
	// lacked.
	parted engine.Digest
}

// call runs one round trip and counts it.
func call[Req, Resp proto.Message](ctx context.Context, in *initiator, f func(context.Context, Req) (Resp, error), req Req) (Resp, error) {
	sent := MessageBytes(req)
	in.res.BytesSent += sent
	resp, err := f(ctx, req)
	if err != nil {
		in.opts.Metrics.Error("session")
		in.opts.Metrics.Exchanged(metrics.Initiator, sent, 0)
		return resp, err
	}
	received := MessageBytes(resp)
	in.res.RoundTrips++
	in.res.BytesReceived += received
	in.opts.Metrics.Exchanged(metrics.Initiator, sent, received)
	return resp, nil
}

// rowsSize is what rows take inside a message, tags and lengths included.
func rowsSize(rows []*grovev1.Row) int64 {
	var n int64
	for _, r := range rows {
		s := proto.Size(r)
		n += int64(1 + protowire.SizeVarint(uint64(s)) + s)
	}
	return n
}

// pass runs one session. It returns false when the final check found
// differences that the fingerprints hid, so another session should run.
func (in *initiator) pass(ctx context.Context) (ok bool, err error) {
	shape := in.local.Shape()
	sub := in.opts.Subtree
	var live engine.Digest
	if sub.Whole() {
		if live, err = in.local.Sum(ctx); err != nil {
			return false, err
		}
	} else {
		if err := sub.check(min(shape.Depth, MaxSessionDepth), ErrIncompatible, "Options.Subtree"); err != nil {
			return false, err
		}
		// A subtree's sum comes from a view, which the session then uses
		// throughout: the replica's live tree gives its root alone.
		view, release, err := in.local.View(ctx)
		if err != nil {
			return false, err
		}
		defer release()
		in.view = view
		if live, err = nodeSum(ctx, view, sub); err != nil {
			return false, err
		}
	}
	salt := make([]byte, SaltBytes)
	if _, err := io.ReadFull(in.opts.Rand, salt); err != nil {
		return false, fmt.Errorf("repair: salt: %w", err)
	}
	in.key, _ = parseSalt(salt)
	hello, err := call(ctx, in, in.peer.Hello, &grovev1.HelloRequest{
		Params:       paramsOf(shape),
		Sum:          live[:],
		Salt:         salt,
		Levels:       uint32(in.opts.FirstLevels),
		SubtreeLevel: uint32(sub.Level),
		SubtreeIndex: sub.Index,
	})
	if err != nil {
		return false, err
	}
	// From here on a session may be open on the peer: any failure closes it
	// rather than leave it to the peer's idle timeout.
	in.session = hello.GetSession()
	defer func() {
		if err != nil || !ok {
			in.abandon(ctx)
		}
	}()
	if err := checkParams(shape, hello.GetParams()); err != nil {
		return false, err
	}
	theirSum, err := parseDigest(hello.GetSum(), "hello answer's sum")
	if err != nil {
		return false, err
	}
	if len(hello.GetSession()) == 0 {
		if theirSum != live {
			return false, fmt.Errorf("%w: the peer's sum differs but it opened no session", ErrBadMessage)
		}
		in.res.InSync, in.res.Converged = true, true
		return true, nil
	}
	in.depth = min(shape.Depth, int(hello.GetParams().GetDepth()), MaxSessionDepth)
	if sub.Level > in.depth {
		return false, fmt.Errorf("%w: the peer opened a session for subtree %v, below the meeting depth %d", ErrBadMessage, sub, in.depth)
	}
	in.res.Depth = in.depth
	ours := live
	if in.view == nil {
		view, release, err := in.local.View(ctx)
		if err != nil {
			return false, err
		}
		defer release()
		in.view = view
		if ours, err = nodeSum(ctx, view, sub); err != nil {
			return false, err
		}
	}

	d, err := in.descend(ctx, hello.GetBand(), theirSum, sub)
	if err != nil || d == nil {
		return false, err
	}
	in.level = d.level
	in.res.Level = in.level
	in.res.DifferingLeaves = differingLeaves(d.nodes, in.level-in.depth)
	mine, theirs, err := in.reconcile(ctx, d)
	if err != nil {
		return false, err
	}

	// The check: our sum, less our rows the peer lacks, plus its rows we
	// lack, must be its sum. A fingerprint collision that hid a node or a
	// row leaves a difference unaccounted for, and the pass is run again.
	check := ours
	check.Add(&in.parted)
	for i := range mine {
		check.Sub(&mine[i].dig)
	}
	for i := range theirs {
		check.Add(&theirs[i].dig)
	}
	if check != theirSum {
		return false, nil
	}
	toPush, toApply := in.classify(mine, theirs)
	if !in.opts.Repair {
		return true, nil
	}
	return true, in.repair(ctx, toPush, toApply)
}

// abandon closes the session on the peer after a failure, best effort and
// briefly: the peer's idle timeout ends it anyway.
func (in *initiator) abandon(ctx context.Context) {
	if len(in.session) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	in.peer.Close(cctx, &grovev1.CloseRequest{Session: in.session})
}

// descent is what the descent found: the nodes whose rows are reconciled,
// at level, with what we know of their sums below the meeting depth, and
// what the first Reconcile tells the peer of the last step — the differ
// bitmap of the last band, or the nodes the last probe located.
type descent struct {
	nodes, checks []uint64
	level         int
	differ, found []byte
}

// descend walks the bands down to the level at which rows are reconciled —
// the leaves, or virtual sub-buckets of them when leaves are dense —
// probing where the frontier nodes hide one difference each, and returns
// what it found, or nil when a fingerprint collision hid the difference.
func (in *initiator) descend(ctx context.Context, band *grovev1.Band, theirSum engine.Digest, sub Subtree) (*descent, error) {
	frontier := []uint64{sub.Index}
	theirFP := []uint32{in.key.of(&theirSum)}
	checks := []uint64{0}
	level := sub.Level
	top := maxLevel(in.depth)
	rows := float64(in.view.Rows())
	// At depth 0 the root is the only leaf, as is a subtree's node at the
	// meeting depth: the peer sent no band, and the descent starts below
	// it, if at all.
	compare := in.depth > level
	if !compare && band != nil {
		return nil, fmt.Errorf("%w: a band under a node at the meeting depth %d", ErrBadMessage, in.depth)
	}
	next, nextFP, nextChecks, differ, sent := frontier, theirFP, checks, []byte{1}, 1
	ourRows := rows
	// lambda and least describe how many differing leaves a frontier node
	// holds: Poisson with mean lambda, at least least of them.
	lambda, least := poisson(1, 2), 1
	// target is the probes' level once one ran; located are the nodes they
	// located there, and found names those of the last probe to the peer.
	target := 0
	var located, locatedChecks []uint64
	var found []byte
	done := func(nodes, checks []uint64, differ []byte, level int) *descent {
		nodes, checks = mergeNodes(nodes, checks, located, locatedChecks)
		return &descent{nodes: nodes, checks: checks, level: level, differ: differ, found: found}
	}
	sums := make([]engine.Digest, 1<<MaxBandLevels)
	counts := make([]int, 1<<MaxBandLevels)
	for {
		if compare {
			if band == nil {
				return nil, fmt.Errorf("%w: no band in the answer", ErrBadMessage)
			}
			levels := int(band.GetLevel()) - level
			if levels < 1 || levels > MaxBandLevels || int(band.GetLevel()) > top || (target != 0 && int(band.GetLevel()) > target) {
				return nil, fmt.Errorf("%w: band at level %d after level %d (deepest %d)", ErrBadMessage, band.GetLevel(), level, top)
			}
			per := 1 << levels
			values := band.GetValues()
			if want := len(frontier) * (per - 1) * FingerprintBytes; len(values) != want {
				return nil, fmt.Errorf("%w: band at level %d holds %d bytes, want %d", ErrBadMessage, band.GetLevel(), len(values), want)
			}
			differ = newBitmap(len(frontier) * per)
			next = make([]uint64, 0, len(frontier))
			nextFP = make([]uint32, 0, len(frontier))
			nextChecks = nextChecks[:0:0]
			held := 0
			for i, p := range frontier {
				if err := childSums(ctx, in.local, in.view, in.depth, level, p, checks[i], levels, sums[:per], counts[:per]); err != nil {
					return nil, err
				}
				last := theirFP[i]
				for j := range per {
					var theirs uint32
					if j < per-1 {
						theirs = fpAt(values, i*(per-1)+j)
						last -= theirs
					} else {
						theirs = last
					}
					if in.key.of(&sums[j]) != theirs {
						setBit(differ, i*per+j)
						next = append(next, p<<levels+uint64(j))
						nextFP = append(nextFP, theirs)
						if level+levels > in.depth {
							nextChecks = append(nextChecks, checkOf(&sums[j]))
							held += counts[j]
						} else {
							nextChecks = append(nextChecks, 0)
						}
					}
				}
			}
			level += levels
			sent = len(frontier) * per
			in.res.Bands = append(in.res.Bands, Band{Level: level, Levels: levels, Frontier: len(frontier), Differ: len(next)})
			in.opts.report("descending", level, max(level, in.depth, target))
			if len(next) == 0 {
				// The parents' fingerprints differed, so a child's must: only
				// a collision at the top (the sums differ, their fingerprints
				// not) gets here. Another pass, with another salt, finds it.
				return nil, nil
			}
			// Our rows in each differing node: counted where the scan gave
			// them, else as if the rows were spread evenly (murmur3 tokens
			// are).
			ourRows = rows / math.Exp2(float64(level))
			if level > in.depth {
				ourRows = float64(held) / float64(len(next))
			}
			lambda, least = poisson(len(next), sent), 1
		}
		compare = true
		if level == top || (target != 0 && level == target) {
			return done(next, nextChecks, differ, level), nil
		}
		// Probe now, walk on towards a probe, or walk all the way as
		// before probes: whichever the density says is cheapest.
		t := target
		if t == 0 {
			t = probeTarget(level, in.depth, top, ourRows)
		}
		walk := probeWalk(len(next), lambda, least, t-level, float64(roundTripBytes+in.opts.BandSlack*FingerprintBytes))
		if walk == 0 && probeWork(len(next), t-level, t > in.depth, ourRows) > max(1<<16, rows/8) {
			// Weights below the leaves cost both sides a hash of every row
			// under the probed nodes: too many yet, walk a level closer.
			walk = 1
		}
		if walk == 0 && len(next)*FingerprintBytes <= in.opts.MaxMessageBytes-1024 {
			rest, restFP, restChecks, undiffer, err := in.probe(ctx, next, nextFP, nextChecks, differ, found, level, t, &located, &locatedChecks, &found)
			if err != nil {
				return nil, err
			}
			target = t
			if len(rest) == 0 {
				return done(nil, nil, nil, target), nil
			}
			lambda = locatedShare(len(next)-len(rest), len(next))
			next, nextFP, nextChecks, differ, least = rest, restFP, restChecks, undiffer, 2
			compare = false
			continue
		}
		if target == 0 && walk == t-level {
			// Not worth a probe: walk to where rows are best reconciled.
			t = targetLevel(level, in.depth, top, len(next), meanAtLeast(lambda, least), ourRows)
			if level >= t {
				return done(next, nextChecks, differ, level), nil
			}
			walk = t - level
		}
		maxValues := (in.opts.MaxMessageBytes - 1024) / FingerprintBytes
		l := nextLevels(len(next), meanAtLeast(lambda, least), min(walk, t-level), maxValues, in.opts.BandSlack)
		resp, err := call(ctx, in, in.peer.Descend, &grovev1.DescendRequest{Session: in.session, Differ: differ, Levels: uint32(l), Found: found})
		if err != nil {
			return nil, err
		}
		found = nil
		if len(resp.GetWeights()) != 0 {
			return nil, fmt.Errorf("%w: weights in the answer to a band", ErrBadMessage)
		}
		band, frontier, theirFP, checks = resp.GetBand(), next, nextFP, nextChecks
	}
}

// probe asks the peer for the weights of the frontier nodes (at level) down
// to target, and locates each node's differing descendant where it differs
// in one only. The located nodes join located (with their checks) and are
// named in *found for the peer; the others are returned, with the bitmap
// that tells the peer to descend under them.
func (in *initiator) probe(ctx context.Context, nodes []uint64, theirFP []uint32, checks []uint64, differ, lastFound []byte, level, target int, located, locatedChecks *[]uint64, found *[]byte) (rest []uint64, restFP []uint32, restChecks []uint64, undiffer []byte, err error) {
	k := target - level
	resp, err := call(ctx, in, in.peer.Descend, &grovev1.DescendRequest{Session: in.session, Differ: differ, Levels: uint32(k), Sparse: true, Found: lastFound})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	weights := resp.GetWeights()
	if resp.GetBand() != nil || len(weights) != len(nodes)*FingerprintBytes {
		return nil, nil, nil, nil, fmt.Errorf("%w: probe answer holds %d bytes of weights (and a band: %v), want %d", ErrBadMessage, len(weights), resp.GetBand() != nil, len(nodes)*FingerprintBytes)
	}
	undiffer = newBitmap(len(nodes))
	var idx []uint64
	for i, p := range nodes {
		w, ours, err := weigh(ctx, in.local, in.view, &in.key, in.depth, level, p, checks[i], k)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		j, ok := locate(fpAt(weights, i)-w, theirFP[i]-ours, k)
		if !ok {
			setBit(undiffer, i)
			rest, restFP, restChecks = append(rest, p), append(restFP, theirFP[i]), append(restChecks, checks[i])
			continue
		}
		node := p<<k | j
		c, err := locatedCheck(ctx, in.local, in.view, in.depth, level, p, checks[i], target, node)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		*located, *locatedChecks = append(*located, node), append(*locatedChecks, c)
		idx = append(idx, j)
	}
	*found = putIndexes(idx, k)
	in.res.Bands = append(in.res.Bands, Band{Level: target, Levels: k, Frontier: len(nodes), Differ: len(idx), Probe: true})
	if len(rest) == 0 {
		in.opts.report("descending", target, target)
	}
	return rest, restFP, restChecks, undiffer, nil
}

// version is one side's row that the other side lacks, with its digest.
type version struct {
	row  engine.Row
	tok  int64
	dig  engine.Digest
	full bool // the value is known (not a keys-only answer)
}

// differingLeaves counts the leaves that hold the differing nodes, levels
// below them (the nodes are in order).
func differingLeaves(nodes []uint64, levels int) int {
	n := 0
	for i, p := range nodes {
		if i == 0 || p>>levels != nodes[i-1]>>levels {
			n++
		}
	}
	return n
}

// reconcile sends our row fingerprints for the differing nodes (leaves, or
// sub-buckets of them), a chunk at a time, and returns our rows the peer
// lacks and its rows we lack.
func (in *initiator) reconcile(ctx context.Context, d *descent) (mine, theirs []version, err error) {
	leaves, checks, differ, found := d.nodes, d.checks, d.differ, d.found
	p := in.view.Partitioner()
	chunkBytes := min(in.opts.MaxMessageBytes/4, 4<<20)
	var scans []leafRows
	var held int64
	hold := func(r *engine.Row) error {
		// A repair lets go of what it holds in parts, between rounds: it
		// holds at most half the limit and one round's answer.
		if held += int64(rowSize(r)); held > in.opts.MaxHeldBytes && !in.opts.Repair {
			return fmt.Errorf("%w: the differing rows exceed %d bytes (Options.MaxHeldBytes); repair the range in parts", ErrLimit, in.opts.MaxHeldBytes)
		}
		return nil
	}
	for next := 0; next < len(leaves); {
		if in.opts.Repair && held > in.opts.MaxHeldBytes/2 {
			if err := in.repairPart(ctx, mine, theirs); err != nil {
				return nil, nil, err
			}
			mine, theirs, held = nil, nil, 0
		}
		req := &grovev1.ReconcileRequest{Session: in.session, Differ: differ, Found: found, First: uint32(next), KeysOnly: in.opts.KeysOnly, End: !in.opts.Repair}
		differ, found = nil, nil
		scans = scans[:0]
		// A round's own rows stay within a quarter of what may be held, so
		// that a repair's parts come out small enough.
		var scanned int64
		for i := next; i < len(leaves) && (i == next || len(req.Fingerprints) < chunkBytes && scanned < in.opts.MaxHeldBytes/4); i++ {
			scans = append(scans, leafRows{})
			lr := &scans[len(scans)-1]
			if err := scanNode(ctx, in.local, in.view, &in.key, in.depth, in.level, leaves[i], checks[i], lr); err != nil {
				return nil, nil, err
			}
			for k := range lr.rows {
				scanned += int64(rowSize(&lr.rows[k]))
			}
			req.Counts = append(req.Counts, uint32(len(lr.fp)))
			for _, f := range lr.fp {
				req.Fingerprints = putFP(req.Fingerprints, f)
			}
		}
		resp, err := call(ctx, in, in.peer.Reconcile, req)
		if err != nil {
			return nil, nil, err
		}
		in.res.RowBytesReceived += rowsSize(resp.GetRows())
		done := int(resp.GetDone())
		if done < 1 || done > len(scans) {
			return nil, nil, fmt.Errorf("%w: reconcile answer handled %d of %d leaves", ErrBadMessage, done, len(scans))
		}
		n := 0
		for _, c := range req.Counts[:done] {
			n += int(c)
		}
		if _, err := checkBitmap(resp.GetMissing(), n, "reconcile answer's missing"); err != nil {
			return nil, nil, err
		}
		at := 0
		for _, lr := range scans[:done] {
			for k := range lr.rows {
				if hasBit(resp.GetMissing(), at+k) {
					if err := hold(&lr.rows[k]); err != nil {
						return nil, nil, err
					}
					mine = append(mine, version{row: lr.rows[k], tok: p.Token(lr.rows[k].Key), dig: lr.dig[k], full: true})
				}
			}
			at += len(lr.rows)
		}
		handled := leaves[next : next+done]
		for i, m := range resp.GetRows() {
			v, err := in.theirRow(m, i, handled)
			if err == nil {
				err = hold(&v.row)
			}
			if err != nil {
				return nil, nil, err
			}
			theirs = append(theirs, v)
		}
		next += done
		in.opts.report("reconciling", next, len(leaves))
	}
	return mine, theirs, nil
}

// theirRow checks one of the peer's rows: it must fall in a node the answer
// handled, and carry a value or (keys-only) a digest, as asked.
func (in *initiator) theirRow(m *grovev1.Row, i int, handled []uint64) (version, error) {
	var v version
	v.row = engine.Row{Key: m.GetKey(), Value: m.GetValue(), TS: m.GetTs(), Deleted: m.GetDeleted()}
	v.tok = in.view.Partitioner().Token(v.row.Key)
	if !in.view.Range().Contains(v.tok) {
		return v, fmt.Errorf("%w: peer row %d has token %d outside the range", ErrBadMessage, i, v.tok)
	}
	if node := uint64(in.view.Range().LeafOf(v.tok, in.level)); !has(handled, node) {
		return v, fmt.Errorf("%w: peer row %d falls in node %d at level %d, not one it was asked about", ErrBadMessage, i, node, in.level)
	}
	if in.opts.KeysOnly {
		d, err := parseDigest(m.GetDigest(), fmt.Sprintf("peer row %d's digest", i))
		if err != nil {
			return v, err
		}
		if len(m.GetValue()) != 0 {
			return v, fmt.Errorf("%w: peer row %d has a value in a keys-only answer", ErrBadMessage, i)
		}
		v.dig = d
		return v, nil
	}
	if len(m.GetDigest()) != 0 {
		return v, fmt.Errorf("%w: peer row %d has a digest instead of its value", ErrBadMessage, i)
	}
	v.dig, v.full = engine.RowDigest(&v.row), true
	return v, nil
}

// has reports whether the sorted nodes hold node.
func has(nodes []uint64, node uint64) bool {
	_, ok := slices.BinarySearch(nodes, node)
	return ok
}

// classify sorts the differing versions into keys and decides, key by key,
// which side's version wins: the winners here go to the peer, the peer's
// winners are applied here.
func (in *initiator) classify(mine, theirs []version) (toPush, toApply []engine.Row) {
	byKey := func(a, b version) int {
		return cmp.Or(cmp.Compare(a.tok, b.tok), bytes.Compare(a.row.Key, b.row.Key))
	}
	slices.SortFunc(mine, byKey)
	slices.SortFunc(theirs, byKey)
	i, j := 0, 0
	for i < len(mine) || j < len(theirs) {
		var c int
		switch {
		case i == len(mine):
			c = 1
		case j == len(theirs):
			c = -1
		default:
			c = byKey(mine[i], theirs[j])
		}
		// Gather every version of this key on each side: a replica holds
		// one, but a Replica is not made to promise it.
		var a, b []version
		var k engine.Key
		if c <= 0 {
			k = engine.Key{Key: mine[i].row.Key, Token: mine[i].tok}
			for i0 := i; i < len(mine) && byKey(mine[i], mine[i0]) == 0; i++ {
				a = append(a, mine[i])
			}
		}
		if c >= 0 {
			k = engine.Key{Key: theirs[j].row.Key, Token: theirs[j].tok}
			for j0 := j; j < len(theirs) && byKey(theirs[j], theirs[j0]) == 0; j++ {
				b = append(b, theirs[j])
			}
		}
		switch {
		case len(b) == 0:
			in.res.OnlyHere = append(in.res.OnlyHere, k)
		case len(a) == 0:
			in.res.OnlyThere = append(in.res.OnlyThere, k)
		default:
			in.res.Different = append(in.res.Different, k)
		}
		if !in.opts.Repair {
			continue
		}
		if len(k.Key) > MaxKeyBytes {
			in.res.Refused = append(in.res.Refused, k)
			for i := range b {
				in.refusedGap.Add(&b[i].dig)
			}
			for i := range a {
				in.refusedGap.Sub(&a[i].dig)
			}
			continue
		}
		win, here := winner(a, b)
		if here {
			toPush = append(toPush, win.row)
		} else {
			toApply = append(toApply, win.row)
		}
	}
	return toPush, toApply
}

// winner returns the version that supersedes all others, and whether it is
// ours.
func winner(a, b []version) (version, bool) {
	var best version
	here, found := false, false
	for _, side := range []struct {
		vs   []version
		here bool
	}{{a, true}, {b, false}} {
		for _, v := range side.vs {
			if !found || engine.Supersedes(&v.row, &best.row) {
				best, here, found = v, side.here, true
			}
		}
	}
	return best, here
}

// repairPart repairs one part of a session whose differing rows outgrow
// what the initiator may hold: the rows of the nodes reconciled so far.
// Their winners are committed at the peer — with more set, so the session
// stays open — and applied here; the session goes on with the other nodes,
// whose rows neither side's part touched. A part is repaired before the
// session's final check, as the rows it moves did differ: a collision
// that check finds only means another pass for what remains.
func (in *initiator) repairPart(ctx context.Context, mine, theirs []version) error {
	for i := range mine {
		in.parted.Sub(&mine[i].dig)
	}
	for i := range theirs {
		in.parted.Add(&theirs[i].dig)
	}
	toPush, toApply := in.classify(mine, theirs)
	if len(toPush) > 0 {
		if _, err := in.push(ctx, toPush, true); err != nil {
			return err
		}
	}
	applied, err := in.local.Apply(ctx, toApply)
	if err != nil {
		return fmt.Errorf("repair: applying a part of the peer's rows failed (run again): %w", err)
	}
	in.res.Applied += applied
	in.res.Parts++
	return nil
}

// push sends rows to the peer in chunks and commits them there in atomic
// batches of up to Options.CommitBytes; the last commit ends the session
// unless more is set. It returns the last commit's answer.
func (in *initiator) push(ctx context.Context, toPush []engine.Row, more bool) (*grovev1.CommitResponse, error) {
	chunkBytes := min(in.opts.MaxMessageBytes/4, 4<<20)
	var batch []*grovev1.Row
	size, staged := 0, 0
	var commit *grovev1.CommitResponse
	for i := 0; ; i++ {
		last := i == len(toPush)
		var r *engine.Row
		if !last {
			r = &toPush[i]
		}
		// Send the batch before it would outgrow a message, and commit what
		// is staged before it would outgrow a commit.
		full := !last && len(batch) > 0 && size+rowSize(r) > chunkBytes
		commitNow := !last && staged+size+rowSize(r) > in.opts.CommitBytes && staged+size > 0
		if last || full || commitNow {
			in.res.RowBytesSent += rowsSize(batch)
			if last || commitNow {
				resp, err := call(ctx, in, in.peer.Commit, &grovev1.CommitRequest{Session: in.session, Rows: batch, More: more || !last})
				if err != nil {
					return nil, err
				}
				in.res.PeerApplied += int(resp.GetApplied())
				commit, staged = resp, 0
			} else {
				if _, err := call(ctx, in, in.peer.Push, &grovev1.PushRequest{Session: in.session, Rows: batch}); err != nil {
					return nil, err
				}
				staged += size
			}
			batch, size = nil, 0
			in.opts.report("repairing", i, len(toPush))
		}
		if last {
			break
		}
		batch = append(batch, &grovev1.Row{Key: r.Key, Value: r.Value, Ts: r.TS, Deleted: r.Deleted})
		size += rowSize(r)
	}
	in.res.Pushed += len(toPush)
	return commit, nil
}

// repair sends our winners to the peer and commits them there (push),
// ending the session, applies the peer's winners here in one batch, and
// checks that both sums agree.
func (in *initiator) repair(ctx context.Context, toPush, toApply []engine.Row) error {
	commit, err := in.push(ctx, toPush, false)
	if err != nil {
		return err
	}
	in.session = nil // the last commit ended it
	theirSum, err := parseDigest(commit.GetSum(), "commit answer's sum")
	if err != nil {
		return err
	}
	applied, err := in.local.Apply(ctx, toApply)
	if err != nil {
		return fmt.Errorf("repair: the peer applied its rows, but applying ours failed (run again): %w", err)
	}
	in.res.Applied += applied
	ours, err := liveSum(ctx, in.local, in.opts.Subtree)
	if err != nil {
		return err
	}
	// The refused rows still differ, as reported: everything else must
	// have converged.
	ours.Add(&in.refusedGap)
	if ours != theirSum {
		return fmt.Errorf("%w: after the repair the sums still differ (writes raced it?)", ErrNotConverged)
	}
	in.res.Converged = len(in.res.Refused) == 0
	return nil
}
