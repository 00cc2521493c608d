//go:build !race

package repair_test

// raceEnabled: the race detector slows the big tests down tenfold, so they
// shrink under it.
const raceEnabled = false
