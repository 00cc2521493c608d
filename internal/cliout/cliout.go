// Package cliout is what both commands, grove and grove-pebble, do with
// their standard output: a failed write to it fails the run.
package cliout

import "io"

// Writer passes writes through to W and remembers the first error, so that
// output written with fmt.Fprint* — whose errors nobody checks line by line
// — still fails the run: output cut short (a full disk, a closed pipe) is
// never success.
type Writer struct {
	W   io.Writer
	err error
}

// Write implements io.Writer; after a failed write every later one fails
// with the same error.
func (c *Writer) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.W.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// Err returns the first write error, or nil.
func (c *Writer) Err() error { return c.err }

// Sync flushes W to its file when it is one, so that a line such as a
// server's address reaches a pipe at once; otherwise it does nothing.
func (c *Writer) Sync() error {
	if f, ok := c.W.(interface{ Sync() error }); ok {
		return f.Sync()
	}
	return nil
}
