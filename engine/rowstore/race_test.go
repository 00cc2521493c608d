//go:build race

package rowstore

// raceEnabled: the race detector slows the big tests down tenfold, so they
// shrink under it.
const raceEnabled = true
