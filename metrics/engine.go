package metrics

// The failures engine.Observer reports, counted under the operation names
// that Values.Errors has always shown.

// BuildFailed counts a load of rows into a tree that stopped on an error.
func (s *Set) BuildFailed() { s.Error("build") }

// HashFailed counts a tree's Hash that stopped on an error.
func (s *Set) HashFailed() { s.Error("hash") }

// DiffFailed counts a Diff of two trees that stopped on an error.
func (s *Set) DiffFailed() { s.Error("diff") }
