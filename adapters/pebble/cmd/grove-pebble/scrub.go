package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/internal/cli"
	"github.com/antientropy/grove/rpc"
)

// scrubReport is scrub's JSON.
type scrubReport struct {
	Ranges        int     `json:"ranges"`
	Rows          int64   `json:"rows"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RowsCorrected int64   `json:"rows_corrected"`
	// Legacy counts rows read without a checksum (a database upgraded
	// from layout 2) and written again with one.
	Legacy     int64           `json:"legacy_rows_rewritten"`
	Mismatches []scrubMismatch `json:"mismatches"`
	// Quarantined are the damaged rows moved aside: a repair with a peer
	// brings their good versions back.
	Quarantined []scrubQuarantined `json:"quarantined"`
	// Excised are the token spans whose rows were dropped because a table
	// holding them was damaged: a repair with a peer restores them.
	Excised []scrubExcised `json:"excised"`
}

// scrubExcised is a damaged table and the tokens whose rows were dropped
// with it.
type scrubExcised struct {
	File string `json:"file"`
	Lo   string `json:"lo"`
	Hi   string `json:"hi"`
	// Ranges are the node's ranges the span crosses, each [lo, hi].
	Ranges [][2]string `json:"ranges"`
}

// scrubQuarantined is a row scrub found damaged and moved aside: its key
// in hex (keys are bytes), its token as a decimal string, and why.
type scrubQuarantined struct {
	Lo     string `json:"lo"`
	Hi     string `json:"hi"`
	Token  string `json:"token"`
	KeyHex string `json:"key_hex"`
	Reason string `json:"reason"`
}

// scrubMismatch is a leaf scrub found its tree wrong about, with its
// range and tokens as decimal strings.
type scrubMismatch struct {
	Lo     string `json:"lo"`
	Hi     string `json:"hi"`
	Leaf   int    `json:"leaf"`
	LeafLo string `json:"leaf_lo"`
	LeafHi string `json:"leaf_hi"`
}

func runScrub(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("scrub")
	nf := &nodeFlags{
		db:     fs.String("db", "", "the Pebble database `DIR` of a node that is not running; without it, the running node at the ring's address is asked"),
		budget: cli.AddBudget(fs, "1GiB", "with --db, memory for the trees and one range's frozen leaves (a `SIZE`: 64MiB, 2GiB)"),
		ring:   addRingFlags(fs),
	}
	tf := cli.AddNet(fs)
	rate := fs.Float64("rate", 0, "read the rows at most at `MB/s` (10^6 bytes a second) of stored keys and values; 0 is unlimited")
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	if !(*rate >= 0) || math.IsInf(*rate, 1) {
		return 0, fmt.Errorf("--rate %v: want MB/s, 0 (unlimited) or more", *rate)
	}
	var out scrubReport
	if *nf.db == "" {
		nr, limit, tlsConf, err := ringAndNet(nf, tf)
		if err != nil {
			return 0, err
		}
		if out, err = askScrub(ctx, nr, *rate*1e6, rpc.ClientOptions{TLS: tlsConf, MaxMessageBytes: limit, CallTimeout: rpc.DefaultAdminCallTimeout}); err != nil {
			return 0, err
		}
	} else {
		node, _, _, err := openRanges(ctx, nf)
		if err != nil {
			return 0, err
		}
		defer node.Close()
		rep, err := node.Scrub(ctx, *rate*1e6)
		if err != nil {
			return 0, err
		}
		if err := node.Close(); err != nil {
			return 0, err
		}
		out = reportOf(rep)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return 0, err
	}
	if len(out.Mismatches) > 0 || out.RowsCorrected != 0 || len(out.Quarantined) > 0 || len(out.Excised) > 0 {
		return exitDifferent, nil
	}
	return exitOK, nil
}

// reportOf is scrub's JSON of a pass's report.
func reportOf(rep grovepebble.ScrubReport) scrubReport {
	out := scrubReport{Ranges: rep.Ranges, Rows: rep.Rows, Bytes: rep.Bytes, Seconds: rep.Duration.Seconds(),
		RowsCorrected: rep.RowsCorrected, Legacy: rep.Legacy, Mismatches: []scrubMismatch{}, Quarantined: []scrubQuarantined{}, Excised: []scrubExcised{}}
	for _, m := range rep.Mismatches {
		out.Mismatches = append(out.Mismatches, mismatchOf(m))
	}
	for _, q := range rep.Quarantined {
		out.Quarantined = append(out.Quarantined, scrubQuarantined{Lo: decimal(q.Range.Lo), Hi: decimal(q.Range.Hi), Token: decimal(q.Token), KeyHex: hex.EncodeToString(q.Key), Reason: q.Reason})
	}
	for _, e := range rep.Excised {
		x := scrubExcised{File: e.File, Lo: decimal(e.Span.Lo), Hi: decimal(e.Span.Hi), Ranges: [][2]string{}}
		for _, r := range e.Ranges {
			x.Ranges = append(x.Ranges, [2]string{decimal(r.Lo), decimal(r.Hi)})
		}
		out.Excised = append(out.Excised, x)
	}
	return out
}

// askScrub asks the running node nr.id for one scrub pass, over its admin
// service, and returns the pass's report.
func askScrub(ctx context.Context, nr *nodeRing, rate float64, copts rpc.ClientOptions) (scrubReport, error) {
	var out scrubReport
	err := askNode(ctx, nr, copts, &out, func(ac *rpc.AdminClient) ([]byte, error) {
		return ac.Scrub(ctx, rpc.ScrubRequest{Rate: rate})
	})
	return out, err
}

// Scrub implements rpc.Admin: one pass at a time, beside the node's
// background scrub if it runs one.
func (a *nodeAdmin) Scrub(ctx context.Context, req rpc.ScrubRequest) ([]byte, error) {
	if !a.scrubbing.TryLock() {
		return nil, fmt.Errorf("%w: a scrub of node %s is already running", repair.ErrBusy, a.nr.id)
	}
	defer a.scrubbing.Unlock()
	if !(req.Rate >= 0) || math.IsInf(req.Rate, 1) {
		return nil, fmt.Errorf("%w: scrub rate %v bytes a second", repair.ErrBadMessage, req.Rate)
	}
	rep, err := a.node.Scrub(ctx, req.Rate)
	if err != nil {
		return nil, err
	}
	return json.Marshal(reportOf(rep))
}

func mismatchOf(m grovepebble.ScrubMismatch) scrubMismatch {
	return scrubMismatch{Lo: decimal(m.Range.Lo), Hi: decimal(m.Range.Hi), Leaf: m.Leaf, LeafLo: decimal(m.Span.Lo), LeafHi: decimal(m.Span.Hi)}
}

// parseScrubRate reads --scrub-rate: MB/s, auto (-1) or off (0).
func parseScrubRate(s string) (float64, error) {
	switch s {
	case "auto":
		return -1, nil
	case "off", "0":
		return 0, nil
	}
	mbps, err := strconv.ParseFloat(s, 64)
	if err != nil || !(mbps > 0) || math.IsInf(mbps, 1) {
		return 0, fmt.Errorf("--scrub-rate %q: want MB/s above 0, auto or off", s)
	}
	return mbps * 1e6, nil
}

// startScrub starts serve's background scrub at rate bytes a second, or
// for auto (-1) at grovepebble.AutoScrubRate of the node's data, and
// returns the rate (0: none).
func startScrub(node *grovepebble.Node, rate float64) (float64, error) {
	if rate == 0 {
		return 0, nil
	}
	if rate < 0 {
		var bytes uint64
		for _, r := range node.Ranges() {
			b, err := node.DiskBytes(r)
			if err != nil {
				return 0, err
			}
			bytes += b
		}
		rate = grovepebble.AutoScrubRate(bytes)
	}
	return rate, node.StartScrub(rate)
}

// decimal is a token as scrub's JSON gives it: a decimal string, since
// JSON numbers lose int64 precision in many readers.
func decimal(t int64) string { return strconv.FormatInt(t, 10) }
