package layout

// bandLevels is how many levels of the tree one block of the Blocked layout
// spans: a 7-level subtree has 127 nodes, which at 32 bytes a node is 4064
// bytes, the most that fits a 4 KiB page.
const bandLevels = 7

// blockSlots is the number of slots every block of the Blocked layout
// occupies: 127 nodes plus one slot of padding, so that with 32-byte nodes a
// block is exactly one 4096-byte page and blocks never straddle pages.
const blockSlots = 1 << bandLevels

// Blocked is the page-blocked layout. A root-to-leaf walk (an update, a
// proof, a diff descending into one subtree) touches ⌈(depth+1)/7⌉ pages
// instead of roughly one page per level, as in BFS, once the tree is larger
// than the cache.
//
// The depth+1 levels are cut into bands of 7 levels counted from the leaves
// up, so only the top band can be short: it has r = depth mod 7 + 1 levels.
// A block is the part of one band below one node of the band's first level,
// stored in 128 slots (4 KiB with 32-byte nodes, one page when the array
// starts page-aligned): its nodes breadth-first, node i of in-block level j
// in slot 2^j − 1 + i, then padding that is never read or written. Blocks
// follow band by band from the top, and within a band in the index order of
// their roots.
//
// The price is space: 128 slots per 127 nodes (0.79%), plus the padding of
// a short top block, which only matters while the tree is small: Slots is
// at most 1.2% above BFS from depth 13 on, and 0.79% at depth 20 and beyond,
// but depth 7 takes 384 slots for 255 nodes, and a tree of depth up to 6 a
// whole 128-slot page. Levels are not contiguous, so batched hashing has to
// gather, or go block by block, where each in-block level is contiguous.
type Blocked struct{}

// Name implements Layout.
func (Blocked) Name() string { return "blocked" }

// ID implements Layout.
func (Blocked) ID() uint8 { return 2 }

// Slots implements Layout.
func (Blocked) Slots(depth int) int {
	// The blocks before a band that would start just below the leaves are
	// all the blocks there are.
	return int(blocksBefore(uint(depth)+1)) * blockSlots
}

// Slot implements Layout. It is called per node on hot paths, so it is
// closed-form, branch-free and small: one remainder by 7 of a 32-bit value
// (a multiply), a clamp, shifts and masks.
func (Blocked) Slot(depth, level, index int) int {
	// Bands are cut from the leaves up, so the height above the leaves,
	// not the level, says where in its band a node is.
	h := uint32(depth-level) % bandLevels
	f := level - (bandLevels - 1) + int(h) // first level of the node's band
	if f < 0 {
		// Only the top band can be short; its first level is the root's.
		f = 0
	}
	j := uint(level-f) & 63 // level within the band; the mask drops shift checks
	i := uint(index)
	block := blocksBefore(uint(f)) + i>>j
	return int(block*blockSlots + 1<<j - 1 + i&(1<<j-1))
}

// LevelContiguous implements Layout.
func (Blocked) LevelContiguous() bool { return false }

// blocksBefore is the number of the first block of the band whose first
// level is f: one for the top block, plus one per node of each full band's
// first level above f. Those first levels are f−7, f−14, … down to the top
// band's height r ≥ 1, so the count is the geometric series
// 1 + Σ 2^(f−7k) = 1 + 2^r·(2^(f−r) − 1)/127. Rather than divide, it takes
// the ones-every-7-bits pattern repunits shifted so its highest one lands
// on bit f−7: the ones below are then exactly bits f−7, f−14, … down to
// f mod 7. That is bit r when r < 7, and the |1 supplies the top block; when
// r = 7 the lowest one is bit 0 and is itself the top block. The mask makes
// the top band (f = 0) start at block 0, and is a no-op otherwise because
// the count is below 2^f.
func blocksBefore(f uint) uint {
	return (repunits>>((63-f)&63) | 1) & (1<<(f&63) - 1)
}

// repunits is Σ_{k≤8} 2^(7k): a one every 7 bits up to bit 56, enough for
// band starts up to level 63, far past MaxDepth.
const repunits = (1<<63 - 1) / (blockSlots - 1)
