package arena_test

import (
	"errors"
	"fmt"

	"github.com/antientropy/grove/arena"
)

func Example() {
	// One budget shared by every tree in the process.
	budget := arena.NewBudget(64 << 20)

	tree, err := arena.Map(budget, 40<<20)
	if err != nil {
		fmt.Println(err)
		return
	}
	tree.Bytes()[0] = 1 // zeroed, writable, outside the Go heap
	fmt.Println(budget)

	// A second tree does not fit: refused before anything is mapped.
	_, err = arena.Map(budget, 40<<20)
	fmt.Println(errors.Is(err, arena.ErrBudgetExceeded))
	fmt.Println(err)

	if err := tree.Close(); err != nil {
		fmt.Println(err)
	}
	fmt.Println(budget)
	// Output:
	// used 40.0 MiB / limit 64.0 MiB (peak 40.0 MiB)
	// true
	// arena: budget exceeded: asked 40.0 MiB (41943040 B), 24.0 MiB (25165824 B) left of 64.0 MiB
	// used 0 B / limit 64.0 MiB (peak 40.0 MiB)
}

func ExampleParseBytes() {
	n, err := arena.ParseBytes("1.5GiB")
	fmt.Println(n, err)
	_, err = arena.ParseBytes("64M")
	fmt.Println(errors.Is(err, arena.ErrInvalidSize))
	// Output:
	// 1610612736 <nil>
	// true
}
