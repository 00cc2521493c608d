package grovepebble

import (
	"context"
	"sync"
	"time"
)

// rateLimiter is a token bucket over bytes read, shared by every scan of a
// Node: a scan of a large range on a busy node must not starve the reads
// the node is there to serve, as Cassandra bounds its validation
// compactions' throughput. It starts empty and holds at most a tenth of a
// second of bytes, so a scan never runs ahead of the rate by more than
// that.
type rateLimiter struct {
	rate  float64 // bytes per second
	burst float64
	mu    sync.Mutex
	have  float64 // may go negative: a debt the caller sleeps off
	last  time.Time
}

// scanChunk is how many bytes a scan reads between charges to the
// limiter: a lock and a clock read per row would cost more than the row.
const scanChunk = 16 << 10

func newRateLimiter(bytesPerSecond float64) *rateLimiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &rateLimiter{rate: bytesPerSecond, burst: max(bytesPerSecond/10, scanChunk), last: time.Now()}
}

// wait charges n bytes and sleeps until the bucket has paid for them, or
// ctx ends. A nil limiter never waits.
func (l *rateLimiter) wait(ctx context.Context, n int64) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	l.have = min(l.burst, l.have+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.have -= float64(n)
	var d time.Duration
	if l.have < 0 {
		d = time.Duration(-l.have / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
