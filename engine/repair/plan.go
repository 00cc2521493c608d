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
//
// mu is that μ: how many differing leaves a frontier node holds.
func nextLevels(frontier int, mu float64, remaining, maxValues, slack int) int {
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
func density(frontier, sent int) float64 { return meanAtLeast(poisson(frontier, sent), 1) }

// poisson is λ above: how many differing leaves a node of the last band
// holds on average, when frontier of its sent nodes differed.
func poisson(frontier, sent int) float64 {
	f := float64(frontier) / float64(sent)
	if limit := 1 - 1/(2*float64(sent)); f > limit {
		f = limit
	}
	return max(-math.Log1p(-f), 1e-9)
}

// atLeast is P(X ≥ c) for X Poisson with mean a, c ≤ 2.
func atLeast(a float64, c int) float64 {
	switch {
	case c <= 0:
		return 1
	case c == 1:
		return -math.Expm1(-a)
	default:
		return max(-math.Expm1(-a)-a*math.Exp(-a), 1e-300)
	}
}

// meanAtLeast is E[X | X ≥ c] for X Poisson with mean lambda, c ≤ 2.
func meanAtLeast(lambda float64, c int) float64 {
	if c <= 1 {
		if lambda < 1e-9 {
			return 1
		}
		return lambda / atLeast(lambda, 1)
	}
	// E[X; X ≥ 2] = λ − P(X = 1) = λ·(1 − e^−λ).
	return max(2, lambda*atLeast(lambda, 1)/atLeast(lambda, 2))
}

// walkBytes is what a one-level step costs a differing node: one
// fingerprint (its sibling's is derived) and two bits of the differ bitmap.
const walkBytes = FingerprintBytes + 0.25

// maxPlannedProbe bounds the probes an initiator asks for, below the
// protocol's MaxProbeLevels: a node hiding several differences passes for
// one hiding a single one with probability 2^levels / 2^32 (2^-12 here), and
// then costs the session a pass.
const maxPlannedProbe = 20

// probeWalk decides when to probe. A probe locates, in one round trip, the
// descendant `levels` down in which a frontier node differs, when it
// differs in only one: 4 bytes of weight a node and `levels` bits to name
// the descendant back, where a level-by-level walk costs walkBytes a level.
// A node hiding several differences is not located: it costs its weight for
// nothing, then a walk on. So the initiator walks while too many frontier
// nodes hide several differences, and probes once few do.
//
// Each of frontier nodes holds X differing leaves, X Poisson with mean
// lambda conditioned on X ≥ c (c is 1 after a band, 2 for nodes a probe
// could not locate). The cost of resolving a node is computed bottom-up,
// level by level, taking at each level the cheaper of a probe and a step
// down (a differing node's children differ independently enough, each
// Poisson with half the mean, at least one). probeWalk returns how many
// levels to walk before the first level where probing is cheaper: 0 to
// probe now, levels when walking all the way is cheapest.
func probeWalk(frontier int, lambda float64, c, levels int, roundTrip float64) int {
	if levels < 1 {
		return levels
	}
	rt := roundTrip / float64(frontier)
	probe := FingerprintBytes + 0.125 // its weight and its bit in the next differ bitmap
	// cost[i] is the cost of resolving a differing node i levels down
	// (Poisson(λ/2^i), at least one), by the best mix of walking and
	// probing; probes[i] says whether it starts with a probe.
	cost := make([]float64, levels+1)
	probes := make([]bool, levels+1)
	node := func(i, c int) (walk, prb float64) {
		la := lambda / math.Exp2(float64(i))
		px := atLeast(la, c)
		// Its two children: how many differ, given X ≥ c and given X ≥ 2.
		h := la / 2
		children := func(c int) float64 {
			return 2 * (1 - math.Exp(-h)*atLeast(h, c)/atLeast(la, c))
		}
		var below float64
		if i < levels {
			below = cost[i+1]
		}
		walk = walkBytes + rt + children(c)*below
		if i == levels {
			return 0, math.Inf(1)
		}
		single := la * math.Exp(-la) * atLeast(0, c-1) / px
		if c >= 2 {
			single = 0
		}
		k := float64(levels - i)
		prb = probe + rt + single*k/8 + (1-single)*(walkBytes+rt+children(2)*below)
		return walk, prb
	}
	for i := levels; i >= 1; i-- {
		if i == levels {
			continue
		}
		walk, prb := node(i, 1)
		cost[i], probes[i] = min(walk, prb), prb < walk
	}
	walk, prb := node(0, c)
	if c < 2 && prb < walk {
		return 0
	}
	for i := 1; i < levels; i++ {
		if probes[i] {
			return i
		}
	}
	return levels
}

// locatedShare is the Poisson mean λ under which a share located/probed of
// differing nodes differ in exactly one leaf (λe^−λ / (1−e^−λ), falling from
// 1 at λ = 0): after a probe, the density of the nodes it could not locate.
func locatedShare(located, probed int) float64 {
	share := (float64(located) + 0.5) / (float64(probed) + 1)
	lo, hi := 1e-9, 64.0
	for range 60 {
		mid := (lo + hi) / 2
		if mid*math.Exp(-mid)/atLeast(mid, 1) > share {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// probeTarget is the level a probe from level would end at: the meeting
// depth or below, as deep as still halves the rows each located node holds
// — each level costs one bit a node to name — until about one is left.
// rows is how many of our rows a frontier node holds.
func probeTarget(level, depth, maxLevel int, rows float64) int {
	t := max(depth, level+1)
	r := rows / math.Exp2(float64(t-level))
	for r > 1 && t < maxLevel && t-level < maxPlannedProbe {
		t++
		r /= 2
	}
	return min(t, maxLevel, level+maxPlannedProbe)
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

// probeWork is about what a probe costs each side to compute, in row
// hashes: the sums it reads (a 64th of a hash each), or — when it ends
// below the leaves — the rows it scans and hashes,
// under frontier nodes of rows rows each. The initiator keeps it to an
// eighth of its rows (64 Ki at least), so that probes cost no more time
// than the bands below the leaves they replace: a probe from level 13 of
// 10 M rows would hash 7 M rows on each side.
func probeWork(frontier, levels int, virtual bool, rows float64) float64 {
	if virtual {
		return float64(frontier) * rows
	}
	// Reading a sum and taking its fingerprint is far cheaper than
	// hashing a row.
	return float64(frontier) * math.Exp2(float64(levels)) / 64
}
