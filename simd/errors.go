package simd

import "errors"

// ErrLength is wrapped by HashPairs when its buffers do not describe a whole
// number of pairs with room for exactly their digests. The wrapping error
// names both lengths, so a caller's sizing bug is visible in the message.
var ErrLength = errors.New("simd: bad buffer length")

// ErrOverlap is wrapped by HashPairs when dst and src share memory. The
// kernels read and write in batches, so hashing in place could silently
// produce wrong digests; refusing is cheaper than debugging that.
var ErrOverlap = errors.New("simd: dst and src overlap")
