package repair

import (
	"encoding/json"
	"testing"

	"github.com/antientropy/grove/engine"
)

// TestReport checks the JSON shape the commands print: keys as text or hex,
// empty lists as [] (not null), and the repaired object only when asked.
func TestReport(t *testing.T) {
	r := &Result{
		OnlyHere:  []engine.Key{{Key: []byte("a")}},
		Different: []engine.Key{{Key: []byte{0xff, 0x00}}},
		Depth:     20, DifferingLeaves: 2, Pushed: 1, Converged: true,
		Stats: Stats{BytesSent: 10, BytesReceived: 20, RoundTrips: 3},
	}
	for _, tc := range []struct {
		repaired bool
		want     string
	}{
		{false, `{"identical":false,"only_here":[{"key":"a"}],"only_there":[],"different":[{"key_hex":"ff00"}],"bytes_sent":10,"bytes_received":20,"round_trips":3,"row_bytes_sent":0,"row_bytes_received":0,"depth":20,"differing_leaves":2}`},
		{true, `{"identical":false,"only_here":[{"key":"a"}],"only_there":[],"different":[{"key_hex":"ff00"}],"bytes_sent":10,"bytes_received":20,"round_trips":3,"row_bytes_sent":0,"row_bytes_received":0,"depth":20,"differing_leaves":2,"repaired":{"pushed":1,"peer_applied":0,"applied":0,"converged":true}}`},
	} {
		got, err := json.Marshal(r.Report(tc.repaired))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Fatalf("repaired=%v:\ngot  %s\nwant %s", tc.repaired, got, tc.want)
		}
	}
}

// TestReportRefused: a refused key shows its first 64 bytes and its length.
func TestReportRefused(t *testing.T) {
	key := make([]byte, MaxKeyBytes+1)
	for i := range key {
		key[i] = 'k'
	}
	r := &Result{Refused: []engine.Key{{Key: key}}}
	got, err := json.Marshal(r.Report(true).Refused)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"key":"` + string(key[:64]) + `","key_bytes":65537}]`
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
