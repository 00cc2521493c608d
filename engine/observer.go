package engine

// Observer is told what trees do, so that a node can export it: package
// metrics' Set implements it. The engine calls it without holding any lock a
// caller could contend on, and never depends on what it does.
type Observer interface {
	// TreeOpened counts a tree mapped: built, opened, snapshotted or folded.
	TreeOpened()
	// TreeClosed counts a tree unmapped.
	TreeClosed()
	// Built counts a full computation of a tree's inner levels.
	Built()
	// Rehashed counts a computation of only the paths above changed leaves.
	Rehashed()
	// Diffed counts a comparison of two trees.
	Diffed()
	// BuildFailed counts a load of rows that stopped on an error.
	BuildFailed()
	// HashFailed counts a Hash that stopped on an error.
	HashFailed()
	// DiffFailed counts a Diff that stopped on an error.
	DiffFailed()
}

// nopObserver is the Observer of a tree given none, so that the engine calls
// its observer unconditionally.
type nopObserver struct{}

func (nopObserver) TreeOpened()  {}
func (nopObserver) TreeClosed()  {}
func (nopObserver) Built()       {}
func (nopObserver) Rehashed()    {}
func (nopObserver) Diffed()      {}
func (nopObserver) BuildFailed() {}
func (nopObserver) HashFailed()  {}
func (nopObserver) DiffFailed()  {}

// orNop returns o, or an observer that ignores everything if o is nil.
func orNop(o Observer) Observer {
	if o == nil {
		return nopObserver{}
	}
	return o
}
