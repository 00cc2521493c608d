// Package grovepebble keeps a grove Merkle tree live over a Pebble database
// (github.com/cockroachdb/pebble/v2, the LSM under CockroachDB) and repairs
// it against peers with grove's repair protocol.
//
// The package is named grovepebble, not pebble, so that a file can import it
// beside Pebble itself without renaming either.
//
// A Node owns one Pebble directory and one token range of a partitioner's
// ring. Open builds the Node's tree by scanning every row in the database —
// the "validation scan" of Cassandra's repair, whose throughput ScanStats
// reports — and from then on the Node keeps the tree in step with the data.
// Put, Delete and Apply write blind: one Pebble batch of Merge operations,
// whose merge operator (Merger) keeps of a key's versions the one that
// wins by Cassandra's rule, so a write never reads the stored version
// first. The tree's leaf must still lose the old row's digest and gain the
// new one's (docs/LIVE.md in the grove repository): a maintainer goroutine
// does that after the commit, reading each key's previous version from a
// snapshot taken before the batch, in key-ordered rounds, and anything that
// reads a tree (a view, a sum, a root, a checkpoint, Rows) first waits for
// it to catch up with every committed batch. Node implements
// repair.Replica, so it serves repair sessions (repair.NewResponder, then
// rpc.NewHandler) and initiates them (repair.Sync).
//
// # A node of many ranges
//
// A ring (package ring) gives a storage node many ranges, each replicated
// with other peers. With Options.Ranges a Node holds them all in one
// database and keeps one live tree per range in a forest (package forest)
// in Options.TreesDir, by default "grove-trees" inside the database
// directory. Its Open reads no rows when the forest was closed cleanly;
// after a crash it rereads only the rows of the leaves that the marks (see
// below) name; a range without a tree is built from its rows. OpenStats
// says which. Each write batch carries, beside its rows, one intent naming
// its rows' tokens, and the trees follow the batch once it has committed;
// when the forest's CheckpointPolicy says so, after a batch, the trees are
// brought up to date and checkpointed under the write lock, and the
// intents and marks they cover deleted.
// A row whose token is in none of the ranges is refused, and Open fails on
// a stored one, unless the ring changed under it: rows of ranges the
// node held before and no longer replicates stay, unowned (in no tree,
// served to no peer), until Cleanup deletes them, as Cassandra's nodetool
// cleanup does. Options.NodeID ties the database to its ring node, so that
// a wrong id is refused rather than taken for a ring change. Each range is a repair.Replica of its own (Replicas,
// Replica); the Node itself no longer answers Root, Sum or View
// (ErrManyRanges); a Router serves them all on one endpoint, handing each
// session to its range's responder. Depths are planned from row counts when a tree is
// built — a new node's trees have one leaf — so call Rebalance after a
// bulk load. Such a database opened as one range (without Ranges) writes no
// marks, so its first write retires a forest in the default directory,
// which the next Open with Ranges then builds from the rows. Options.NoSync
// is ignored there: the trees' files outlive a
// crash, so a batch the WAL lost would leave a tree change no mark names.
//
// # Storage layout (version 3)
//
// Every row is one Pebble key, ordered so that a token range is one ordered
// range scan:
//
//	key:   byte 0       0x01 (the row prefix)
//	       bytes 1..8   the row's token as uint64(token) XOR 1<<63, big-endian:
//	                    flipping the sign bit makes signed token order byte order
//	       bytes 9..    the row key, as given (any length, may be empty)
//	value: byte 0       flags: bit 0 set for a tombstone; bit 1 set when a
//	                    generation of birth follows the timestamp; bit 2 set
//	                    when a checksum follows; bits 3..7 are zero
//	       bytes 1..8   the write timestamp, uint64(ts) big-endian
//	       then         with bit 1: the generation of birth, a uvarint — the
//	                    forest generation of the first write of the key (the
//	                    merge operator keeps the earliest; a value without
//	                    one is older than every generation)
//	       then         the value bytes (kept for a tombstone too, so its digest
//	                    is the one the peer computed)
//	       last         with bit 2: 4 bytes big-endian, the CRC-32C
//	                    (Castagnoli) of the composite key, then of every byte
//	                    of the stored value before these four
//
// Every row written since layout 3 has bit 2. A row that fails its
// checksum or does not decode is never served: reads skip it, the merge
// operator drops it for a sound version, and the scrub moves it to
// 0x00 "quarantine" followed by its composite key, with its value as
// found (see Scrub).
//
// Rows are written with Pebble's Merge, and the database's OPTIONS file
// names the merge operator grove.supersedes.v1 (Merger), which Pebble
// requires of every later open. A database of layout 1 (rows written with
// Set, Pebble's default merge operator named, no generations of birth) is
// upgraded by its first Open: the OPTIONS file is rewritten to name Merger
// and the format record to say 3; no row is rewritten then. A database of
// layout 2 is upgraded to 3 the same way. The scrub writes the rows
// without a checksum again with one, and a pass that finds none sets the
// format record's strict bit.
//
// Rows of one token sort by key bytes, so a key's place is fixed and a point
// lookup is one Get of the composite key. Two metadata keys live under prefix
// 0x00:
//
//	0x00 "format"   3 bytes: layout version (3), partitioner ID (token.Partitioner.ID),
//	                flags: bit 0 set when every row has a checksum (a database
//	                created at layout 3, or one upgraded from layout 1 or 2
//	                once a scrub has written its older rows again with
//	                theirs). Layouts 1 and 2 wrote the first two bytes only.
//	0x00 "rows"     8 bytes big-endian: the row count at the last Open or Close,
//	                a hint that picks the tree depth before the scan counts rows
//
// A node of many ranges adds one intent per write batch since the last
// checkpoint:
//
//	key:   0x00 "mark", then the forest generation (8 bytes big-endian), then
//	       the batch's number in its generation (8 bytes big-endian)
//	value: the tokens of the batch's rows, 8 bytes each, encoded as row
//	       tokens are
//
// After a crash, each token an intent of a generation a tree's checkpoint
// does not cover names the leaf holding it to recompute, and the rows of
// that token born in that generation are the keys the batch inserted: the
// row-count change, which a blind write cannot know when it writes.
// Databases written by layout 1 may also hold marks, under the same prefix:
//
//	key:   0x00 "mark", then the forest generation (8 bytes big-endian), then
//	       the leaf's Lo and Hi tokens (8 bytes each, encoded as row tokens are)
//	value: 8 bytes big-endian: the int64 sum of the row-count changes (+1 an
//	       insert, 0 a replacement) the generation's batches made in the leaf
//
// The generation comes first so that the intents and marks a checkpoint
// covers are one key range, deleted with one synced DeleteRange. Two more records keep the
// node's place across ring changes:
//
//	0x00 "held"     16 bytes a span, in token order: each span's Lo and Hi,
//	                encoded as row tokens are. The token spans the database
//	                may hold rows in: the node's ranges and the unowned
//	                spans a ring change left. Written, synced, before an
//	                Open with new ranges drops a tree; Cleanup shrinks it
//	                to the ranges in the batch that deletes the rows.
//	0x00 "node"     the ring node id (Options.NodeID) the database belongs to
//	0x00 "match"    then a range's Lo and Hi (as in "held") and a peer's node
//	                id: when the range last matched that peer (RecordMatch),
//	                Unix nanoseconds, 8 bytes big-endian
//
// Open refuses a database whose format record names another layout version
// or partitioner (ErrIncompatible): its tokens would all be wrong. A
// database with keys but no format record is another application's
// (ErrNotNode). Open creates a node only with Options.Create, where nothing
// is yet (ErrNotExist without it), so a mistyped path never becomes an empty
// replica that a repair fills with a peer's whole range. Keys under
// any other prefix are not the Node's and are left alone. A row whose token
// lies outside the Node's range fails Open with ErrOutOfRange, naming the
// key. A row that does not decode, fails its checksum, or whose stored
// token is not its key's is damage: Open builds the trees without it, and
// the scrub moves it aside.
//
// Options.ScanRate bounds every scan of the rows, all together, in bytes
// a second: a scan on a busy node must leave the disk to the reads it
// serves, as Cassandra bounds its validation compactions.
//
// # Scrub
//
// A live tree holds the digests of what was written; bytes that change
// underneath it (bit rot, a restored backup, a write around the node) it
// cannot see. Scrub reads every range's rows again and sets each leaf
// whose sum is not its rows' sum to what the rows say, so that the next
// repair session finds the divergence; StartScrub does it in the
// background at a given rate (AutoScrubRate: a pass in DefaultScrubPass),
// resuming after a restart with the ranges scrubbed longest ago
// (LastScrubbed). Writers wait only while a range's leaves are copied:
// they are frozen with a snapshot, and the differences found are added to
// the live leaves, where they stay right after the writes taken meanwhile.
//
// Damage the node can see it never serves. A row that fails its checksum
// or does not decode is skipped by every read and named a suspect; the
// scrub takes suspects' ranges first and moves each such row aside
// (ScrubReport.Quarantined). A table that fails Pebble's block checksums
// fails the reads that reach it; the scrub drops the rows of its key span
// with Pebble's Excise and sets the trees to what remains
// (ScrubReport.Excised). Either way the next repair session finds the
// rows missing and fetches them from the peers.
//
// # Consistency
//
// One writer lock orders every write (Put, Delete, Apply) against View: a
// view is taken with no batch half applied and after the maintainer has
// caught up with every committed batch, so its leaves are the data at that
// instant. Scans read Pebble without the lock (an iterator is a consistent
// point-in-time view, and merges a key's versions as a compaction would);
// a write landing between a session's view and its scan of a leaf is
// caught by the repair protocol (repair.ErrChanged). Writes are
// serialised: a Pebble write costs a WAL append, which is serialised
// inside Pebble anyway, and a maintainer round must take exactly the
// batches committed since the last.
package grovepebble
