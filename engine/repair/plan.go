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
	f := float64(frontier) / float64(sent)
	if limit := 1 - 1/(2*float64(sent)); f > limit {
		f = limit
	}
	lambda := -math.Log1p(-f)
	mu := 1.0
	if lambda > 1e-9 {
		mu = lambda / -math.Expm1(-lambda)
	}
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
