package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/internal/atomicfile"
)

// savingReplica is serve's replica with --repair-out: every batch a repair
// applies is first written, with the rows it joins, to a temporary file
// beside the output, and only once that file is complete and fsynced is the
// batch applied in memory and the file renamed into place. A batch that
// cannot be saved (a full disk, a vanished directory) is not applied, and
// the responder's Commit fails with the reason; so the file always holds
// what the server serves.
type savingReplica struct {
	*rowstore.Replica
	out string
	// logf logs a repair that could not be saved.
	logf func(format string, a ...any)
	// mu orders batches: the rows written out are the store's as of the
	// batch, so no other batch may land between the write and the apply.
	mu sync.Mutex
}

// Apply implements repair.Replica.
func (s *savingReplica) Apply(ctx context.Context, rows []engine.Row) (int, error) {
	n, err := s.apply(ctx, rows)
	if err != nil {
		s.logf("repair failed: %v", err)
	}
	return n, err
}

func (s *savingReplica) apply(ctx context.Context, rows []engine.Row) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changes := s.winners(rows)
	if len(changes) == 0 {
		return s.Replica.Apply(ctx, rows)
	}
	f, err := atomicfile.Create(s.out, 0o644)
	if err != nil {
		return 0, fmt.Errorf("--repair-out: %w; the repair was not applied", err)
	}
	defer f.Abort()
	if err := s.writeMerged(ctx, f, changes); err != nil {
		return 0, fmt.Errorf("--repair-out %s: %w; the repair was not applied", s.out, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("--repair-out %s: %w; the repair was not applied", s.out, err)
	}
	n, err := s.Replica.Apply(ctx, rows)
	if err != nil {
		return n, err
	}
	if err := f.Commit(); err != nil {
		return n, fmt.Errorf("--repair-out: the repair was applied in memory but %w", err)
	}
	return n, nil
}

// winners returns the rows of the batch the store would write — for each
// key the batch's winner, when it supersedes the stored version — in
// (token, key) order, the store's own.
func (s *savingReplica) winners(rows []engine.Row) []keyed {
	p := s.Store().Partitioner()
	byKey := make([]keyed, 0, len(rows))
	for i := range rows {
		byKey = append(byKey, keyed{tok: p.Token(rows[i].Key), row: &rows[i]})
	}
	slices.SortFunc(byKey, compareKeyed)
	var out []keyed
	for i := 0; i < len(byKey); {
		win := byKey[i]
		j := i + 1
		for ; j < len(byKey) && compareKeyed(byKey[j], win) == 0; j++ {
			if engine.Supersedes(byKey[j].row, win.row) {
				win = byKey[j]
			}
		}
		i = j
		if old, ok := s.Store().Get(win.row.Key); ok && !engine.Supersedes(win.row, &old) {
			continue
		}
		out = append(out, win)
	}
	return out
}

type keyed struct {
	tok int64
	row *engine.Row
}

func compareKeyed(a, b keyed) int {
	return cmp.Or(cmp.Compare(a.tok, b.tok), bytes.Compare(a.row.Key, b.row.Key))
}

// writeMerged writes the store's rows with changes merged in, in the order
// and form Store.WriteJSONL writes them.
func (s *savingReplica) writeMerged(ctx context.Context, f *atomicfile.File, changes []keyed) error {
	bw := bufio.NewWriterSize(f, 1<<20)
	jw := jsonl.NewWriter(bw)
	p := s.Store().Partitioner()
	next := 0
	err := s.Store().All(ctx, func(r *engine.Row) error {
		cur := keyed{tok: p.Token(r.Key), row: r}
		for next < len(changes) && compareKeyed(changes[next], cur) < 0 {
			if err := jw.WriteRow(changes[next].row); err != nil {
				return err
			}
			next++
		}
		if next < len(changes) && compareKeyed(changes[next], cur) == 0 {
			next++
			return jw.WriteRow(changes[next-1].row)
		}
		return jw.WriteRow(r)
	})
	if err != nil {
		return err
	}
	for ; next < len(changes); next++ {
		if err := jw.WriteRow(changes[next].row); err != nil {
			return err
		}
	}
	if err := jw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}
