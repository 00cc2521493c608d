package main

import (
	"encoding/hex"
	"fmt"

	"github.com/antientropy/grove/engine/token"
)

func runToken(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("token")
	isHex := c.Bool("hex", false, "KEY is hex-encoded bytes")
	pos, err := c.parse(args, 1)
	if err != nil {
		return 0, err
	}
	key := []byte(pos[0])
	if *isHex {
		if key, err = hex.DecodeString(pos[0]); err != nil {
			return 0, fmt.Errorf("KEY %q is not hex: %w", pos[0], err)
		}
	}
	fmt.Fprintln(stdout, token.Murmur3{}.Token(key))
	return exitOK, nil
}
