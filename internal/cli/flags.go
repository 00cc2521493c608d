package cli

import (
	"crypto/tls"
	"flag"
	"fmt"
	"strconv"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/internal/memlimit"
	"github.com/antientropy/grove/rpc"
)

// Depth is --depth: a tree depth from Min to engine.MaxDepth, or "auto"
// (engine.AutoDepth, the default).
type Depth struct {
	// Depth is the value given, or engine.AutoDepth.
	Depth int
	// Min is the shallowest depth accepted: 0, a one-leaf tree, which the
	// engine builds; a program whose store cannot build it says 1.
	Min int
}

// AddDepth registers --depth on fs, from min to engine.MaxDepth or auto.
func AddDepth(fs *flag.FlagSet, min int) *Depth {
	d := &Depth{Depth: engine.AutoDepth, Min: min}
	fs.Var(d, "depth", fmt.Sprintf("tree depth `N`, %d..%d, or auto (sized for the rows and the budget)", min, engine.MaxDepth))
	return d
}

// String implements flag.Value.
func (d *Depth) String() string {
	if d == nil || d.Depth == engine.AutoDepth {
		return "auto"
	}
	return strconv.Itoa(d.Depth)
}

// Set implements flag.Value.
func (d *Depth) Set(s string) error {
	if s == "auto" {
		d.Depth = engine.AutoDepth
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < d.Min || n > engine.MaxDepth {
		return fmt.Errorf("depth %q: want %d..%d or auto", s, d.Min, engine.MaxDepth)
	}
	d.Depth = n
	return nil
}

// Budget is --budget: the memory a command's trees may map, outside the Go
// heap.
type Budget struct {
	fs   *flag.FlagSet
	size *string
}

// AddBudget registers --budget on fs with the default size def (such as
// "1GiB") and the usage text usage.
func AddBudget(fs *flag.FlagSet, def, usage string) *Budget {
	return &Budget{fs: fs, size: fs.String("budget", def, usage)}
}

// Get parses the flag into a budget, fitted by BudgetOf.
func (b *Budget) Get() (*arena.Budget, error) {
	explicit := false
	b.fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "budget" })
	return BudgetOf(*b.size, explicit)
}

// BudgetOf returns a budget of size (such as "64MiB"). Under an
// address-space limit (ulimit -v) it must fit in what the limit leaves: a
// default (explicit false) shrinks to fit, and a size the user gave that
// does not fit is refused, rather than a mapping or the runtime failing
// later.
func BudgetOf(size string, explicit bool) (*arena.Budget, error) {
	n, err := arena.ParseBytes(size)
	if err != nil {
		return nil, fmt.Errorf("--budget: %w", err)
	}
	if n, err = memlimit.Fit(n, explicit, "--budget "+size); err != nil {
		return nil, err
	}
	return arena.NewBudget(n), nil
}

// Net is the transport flags a server and a client of the repair protocol
// take: TLS (--tls-cert, --tls-key, --tls-ca) and --max-message.
type Net struct {
	// Cert, Key and CA are the TLS files given, or "".
	Cert, Key, CA *string
	maxMessage    *string
}

// AddNet registers the transport flags on fs.
func AddNet(fs *flag.FlagSet) *Net {
	return &Net{
		Cert:       fs.String("tls-cert", "", "PEM certificate `FILE`: serve or dial with TLS"),
		Key:        fs.String("tls-key", "", "PEM private key `FILE` of --tls-cert"),
		CA:         fs.String("tls-ca", "", "PEM CA `FILE`: the peer's certificate must be signed by it (mutual TLS)"),
		maxMessage: fs.String("max-message", "64MiB", "largest protocol message sent or accepted (`SIZE`, 64KiB to 1GiB)"),
	}
}

// MessageLimit returns --max-message in bytes.
func (n *Net) MessageLimit() (int, error) {
	b, err := arena.ParseBytes(*n.maxMessage)
	if err != nil || b < 64<<10 || b > 1<<30 {
		return 0, fmt.Errorf("--max-message %q: want a size from 64KiB to 1GiB", *n.maxMessage)
	}
	return int(b), nil
}

// Config returns --max-message in bytes and the TLS configuration of a
// server (server true) or a client: what a command that talks to peers
// needs of the flags, checked.
func (n *Net) Config(server bool) (limit int, tlsConf *tls.Config, err error) {
	if limit, err = n.MessageLimit(); err != nil {
		return 0, nil, err
	}
	if tlsConf, err = n.TLSConfig(server); err != nil {
		return 0, nil, err
	}
	return limit, tlsConf, nil
}

// TLSConfig returns nil when no TLS flag is given, else the server's
// (server true) or the client's TLS configuration.
func (n *Net) TLSConfig(server bool) (*tls.Config, error) {
	if *n.Cert == "" && *n.Key == "" && *n.CA == "" {
		return nil, nil
	}
	if server {
		return rpc.ServerTLS(*n.Cert, *n.Key, *n.CA)
	}
	return rpc.ClientTLS(*n.Cert, *n.Key, *n.CA)
}
