// Package repair finds and repairs the rows in which two replicas differ by an
// interactive exchange whose cost grows with the difference, not the data.
//
// An Initiator drives a session against a Peer — a Responder in the same
// process, or one across a network through any transport — and each side
// reads its rows through a Replica. docs/PROTOCOL.md describes the messages.
package repair
