// Package flock takes the one-writer lock on a file: a tree file opened
// writable, a forest's directory. A second holder, in this process or
// another, is refused at once rather than made to wait.
package flock
