package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/rpc"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// rowStore serves a node's write path over rpc.RowService: rows the node
// refuses — a token in none of its ranges, a key over the limit — reach the
// writer as rpc.ErrRefused, and every other failure as the node's.
type rowStore struct{ node *grovepebble.Node }

var _ rpc.RowStore = rowStore{}

func refused(err error) error {
	if errors.Is(err, grovepebble.ErrOutOfRange) || errors.Is(err, grovepebble.ErrKeyTooLarge) {
		return fmt.Errorf("%w: %w", rpc.ErrRefused, err)
	}
	return err
}

func (s rowStore) Apply(ctx context.Context, rows []engine.Row) (int, error) {
	n, err := s.node.Apply(ctx, rows)
	return n, refused(err)
}

func (s rowStore) Get(ctx context.Context, key []byte) (engine.Row, bool, error) {
	r, ok, err := s.node.Get(ctx, key)
	return r, ok, refused(err)
}
