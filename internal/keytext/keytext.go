// Package keytext shows a row key to people: as text when its bytes are
// UTF-8, else as hex. Keys are arbitrary bytes, so every command, report
// and error message that names one goes through here, and a key reads the
// same wherever it appears.
package keytext

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// IsText reports whether k is shown as text rather than hex: when its bytes
// are valid UTF-8. Unprintable runes do not make it hex; Quote escapes them,
// and JSON encoders escape them too.
func IsText(k []byte) bool { return utf8.Valid(k) }

// Quote returns k as a message or listing shows it: Go-quoted text when
// IsText(k) ("user:1", "tab\there"), else 0x and lower-case hex (0x00ff).
func Quote(k []byte) string {
	if IsText(k) {
		return strconv.Quote(string(k))
	}
	return "0x" + hex.EncodeToString(k)
}
