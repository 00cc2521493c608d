package simd

import (
	"os"
	"strings"
)

// overrideEnv names the environment variable that makes the dispatch behave
// as on a CPU with fewer features, so that one machine can run the tests of
// every path its users' CPUs may take. It is a comma-separated list:
//
//	noshani   as without SHA-NI: no two-stream kernels, no minio row
//	          digests, and gohashtree (told through its own feature flag)
//	          takes its AVX-512 or AVX2 path
//	noavx512  as without AVX-512 (gohashtree's flag too)
//
// It is read once, at package initialisation, and only on amd64 builds with
// assembly; elsewhere it changes nothing. Unknown words are ignored, and
// Features shows the variable whenever it is set, so a report says which
// machine it pretended to be.
const overrideEnv = "GROVESIMD"

// override is what overrideEnv asked for.
type override struct {
	set               bool
	noSHANI, noAVX512 bool
	raw               string
}

var overrides = parseOverride(os.Getenv(overrideEnv))

func parseOverride(s string) override {
	o := override{set: s != "", raw: s}
	for _, w := range strings.Split(s, ",") {
		switch strings.TrimSpace(strings.ToLower(w)) {
		case "noshani":
			o.noSHANI = true
		case "noavx512":
			o.noAVX512 = true
		}
	}
	return o
}
