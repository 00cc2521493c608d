package repair

import "math"

// nextLevels picks how many levels the next band spans. A band of L levels
// costs 2^L − 1 fingerprints per frontier node, whatever lies below; a walk
// of one level per round trip would send one per differing node per level.
// Where differences are dense the two cost the same and the band saves
// round trips; where they are sparse — each frontier node hiding a single
// differing leaf — the band sends mostly fingerprints of equal nodes.
//
// The density comes from the last band: a fraction f of the nodes sent
// differed, so, modelling differing leaves as scattered at random, a node
// holds λ = −ln(1−f) of them on average and a differing node μ = λ/(1−e^−λ).
// j levels further down such a node has about 2^j·(1−e^(−μ/2^j)) differing
// descendants. The band is taken as deep as it costs at most a quarter more
// than that per-level walk, plus a fixed slack of fingerprints that buys
// round trips when the frontier is small — which is what makes one differing
// row at depth 20 cost three round trips of descent instead of twenty.
func nextLevels(frontier, sent, remaining, maxValues, slack int) int {
	mu := density(frontier, sent)
	best := 1
	walk := 1.0 // expected per-level cost over the first L levels, per node
	for l := 2; l <= min(MaxBandLevels, remaining); l++ {
		span := math.Exp2(float64(l - 1))
		walk += max(1, span*-math.Expm1(-mu/span))
		band := float64(frontier) * (math.Exp2(float64(l)) - 1)
		if band > float64(maxValues) || band > 1.25*float64(frontier)*walk+float64(slack) {
			break
		}
		best = l
	}
	return min(best, remaining)
}

// density is μ above: how many differing leaves (or rows) a differing node
// of the last band holds, when frontier of its sent nodes differed.
func density(frontier, sent int) float64 {
	f := float64(frontier) / float64(sent)
	if limit := 1 - 1/(2*float64(sent)); f > limit {
		f = limit
	}
	lambda := -math.Log1p(-f)
	if lambda > 1e-9 {
		return lambda / -math.Expm1(-lambda)
	}
	return 1
}

// roundTripBytes is about what one more round trip costs beyond its
// fingerprints: two session ids, tags, lengths, the differ bitmap's framing.
const roundTripBytes = 64

// targetLevel picks the level at which the differing nodes' rows are
// reconciled: at least the meeting depth, and below it — into virtual
// sub-buckets of the leaves — while that is cheaper. Reconciling a node
// sends a fingerprint for each of our rows in it, so a leaf of 7,800 rows
// hiding one differing row costs 31 KB; each level further down halves the
// rows that ride along with the differing ones for about one fingerprint a
// differing node (a level-by-level walk, the sibling derived). So the
// descent goes on while a differing node holds more than twice as many of
// our rows as differing ones, and only if the rows' fingerprints it saves
// outweigh the walk's plus a round trip — at ~10 rows a leaf one differing
// key is cheaper to reconcile in its leaf, ten thousand are not.
//
// frontier nodes at level differ, each holding about mu differing leaves
// (density) and rows of ours on average.
func targetLevel(level, depth, maxLevel, frontier int, mu, rows float64) int {
	t := max(level, depth)
	below := math.Exp2(float64(t - level))
	r := rows / below                           // our rows per node at t
	m := max(1, mu/below)                       // differing rows per differing node at t
	nodes := float64(frontier) * min(mu, below) // differing nodes at t
	r0, v := r, 0
	for t+v < maxLevel && r > 2*m {
		r, m = r/2, max(1, m/2)
		v++
	}
	if v > 0 {
		saved := nodes * (r0 - r) * FingerprintBytes
		cost := nodes*float64(v)*(FingerprintBytes+0.25) + roundTripBytes
		if saved <= cost {
			v = 0
		}
	}
	return t + v
}
