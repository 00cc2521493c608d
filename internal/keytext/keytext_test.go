package keytext

import "testing"

func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		key    []byte
		text   bool
		quoted string
	}{
		{[]byte("user:1"), true, `"user:1"`},
		{[]byte(""), true, `""`},
		{[]byte("tab\there\x00"), true, `"tab\there\x00"`},
		{[]byte("naïve"), true, `"naïve"`},
		{[]byte{0x00, 0xff}, false, "0x00ff"},
		{[]byte{'a', 0xc3}, false, "0x61c3"}, // a cut multi-byte rune
	} {
		if got := IsText(tc.key); got != tc.text {
			t.Errorf("IsText(%q) = %v, want %v", tc.key, got, tc.text)
		}
		if got := Quote(tc.key); got != tc.quoted {
			t.Errorf("Quote(%q) = %s, want %s", tc.key, got, tc.quoted)
		}
	}
}
