package repair

import (
	"encoding/hex"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/internal/keytext"
)

// Report is a session's result in the shape `grove sync --json` prints
// (docs/PROTOCOL.md and the README describe it): the keys from the
// initiator's point of view (only here, only there: at the peer), each as {"key": text}
// when it is UTF-8 or {"key_hex": hex} otherwise, and what the session cost.
type Report struct {
	Identical       bool            `json:"identical"`
	OnlyHere        []ReportKey     `json:"only_here"`
	OnlyThere       []ReportKey     `json:"only_there"`
	Different       []ReportKey     `json:"different"`
	BytesSent       int64           `json:"bytes_sent"`
	BytesReceived   int64           `json:"bytes_received"`
	RoundTrips      int             `json:"round_trips"`
	RowBytesSent    int64           `json:"row_bytes_sent"`
	RowBytesRecv    int64           `json:"row_bytes_received"`
	Depth           int             `json:"depth"`
	DifferingLeaves int             `json:"differing_leaves"`
	Repaired        *RepairedReport `json:"repaired,omitempty"`
	// Refused lists the keys over MaxKeyBytes that a repair could not move
	// (Result.Refused); absent when there are none.
	Refused []RefusedKey `json:"refused,omitempty"`
}

// RefusedKey is a key a repair refused to move: its first bytes, as a
// ReportKey, and its whole length.
type RefusedKey struct {
	ReportKey
	Bytes int `json:"key_bytes"`
}

// refusedPrefix is how much of a refused key a report shows: enough to find
// it, not 64 KiB of it.
const refusedPrefix = 64

// RepairedReport is what a repairing session changed.
type RepairedReport struct {
	Pushed      int  `json:"pushed"`
	PeerApplied int  `json:"peer_applied"`
	Applied     int  `json:"applied"`
	Converged   bool `json:"converged"`
}

// ReportKey is one key: Key when its bytes are UTF-8, else KeyHex.
type ReportKey struct {
	Key    *string `json:"key,omitempty"`
	KeyHex *string `json:"key_hex,omitempty"`
}

// ReportKeyOf returns k as a ReportKey, text or hex as keytext decides, so
// that JSON and the commands' text output agree on which a key is.
func ReportKeyOf(k []byte) ReportKey {
	if keytext.IsText(k) {
		s := string(k)
		return ReportKey{Key: &s}
	}
	h := hex.EncodeToString(k)
	return ReportKey{KeyHex: &h}
}

// ReportKeys returns keys as ReportKeys, an empty list (not nil) for none.
func ReportKeys(ks []engine.Key) []ReportKey {
	out := make([]ReportKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, ReportKeyOf(k.Key))
	}
	return out
}

// Report returns the result as a Report; repaired says whether the session
// was asked to repair, which adds the Repaired object.
func (r *Result) Report(repaired bool) Report {
	rep := Report{
		Identical: r.InSync,
		OnlyHere:  ReportKeys(r.OnlyHere), OnlyThere: ReportKeys(r.OnlyThere), Different: ReportKeys(r.Different),
		BytesSent: r.BytesSent, BytesReceived: r.BytesReceived, RoundTrips: r.RoundTrips,
		RowBytesSent: r.RowBytesSent, RowBytesRecv: r.RowBytesReceived,
		Depth: r.Depth, DifferingLeaves: r.DifferingLeaves,
	}
	for _, k := range r.Refused {
		rep.Refused = append(rep.Refused, RefusedKey{ReportKeyOf(k.Key[:min(len(k.Key), refusedPrefix)]), len(k.Key)})
	}
	if repaired {
		rep.Repaired = &RepairedReport{Pushed: r.Pushed, PeerApplied: r.PeerApplied, Applied: r.Applied, Converged: r.Converged}
	}
	return rep
}
