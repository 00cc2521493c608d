package jsonl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// encoding/json is lenient where grove's formats are not: it matches field
// names case-insensitively, lets a repeated field overwrite the first,
// replaces an escaped lone surrogate (\ud800) with U+FFFD, and stops reading
// after the first value. strictCheck rejects all four before decoding, so a
// line means exactly what it says or is an error.

// fields names the fields an object may have; a nested object's fields are
// in sub.
type fields struct {
	names map[string]bool
	sub   map[string]*fields
}

var rowFields = &fields{names: set("key", "key_hex", "value", "value_hex", "ts", "deleted")}

var changeFields = &fields{
	names: set("op", "key", "key_hex", "value", "value_hex", "ts", "deleted", "old"),
	sub:   map[string]*fields{"old": {names: set("value", "value_hex", "ts", "deleted")}},
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// strictCheck checks that line is one JSON object, with nothing but white
// space after it, whose field names are exactly those allowed, each at most
// once, and whose strings escape no lone surrogate.
func strictCheck(line []byte, f *fields) error {
	if err := checkSurrogates(line); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := checkObject(dec, f); err != nil {
		return err
	}
	if rest := bytes.TrimSpace(line[dec.InputOffset():]); len(rest) > 0 {
		return fmt.Errorf("more than one JSON value on the line (%q follows the object)", trunc(rest))
	}
	return nil
}

func checkObject(dec *json.Decoder, f *fields) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want a JSON object, got %v", tok)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		switch {
		case !f.names[name]:
			return fmt.Errorf("unknown field %q", name)
		case seen[name]:
			return fmt.Errorf("field %q given twice", name)
		}
		seen[name] = true
		if sub := f.sub[name]; sub != nil {
			// null stands for "absent"; anything else must be the object.
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return err
			}
			if string(raw) != "null" {
				if err := checkObject(json.NewDecoder(bytes.NewReader(raw)), sub); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			continue
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// checkSurrogates rejects \uD800–\uDFFF escapes that do not form a pair.
func checkSurrogates(b []byte) error {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++
		if i >= len(b) || b[i] != 'u' {
			continue // \" \\ \n …: one escaped byte, skipped by the loop
		}
		r, ok := hex4(b, i+1)
		i += 4
		if !ok || r < 0xd800 || r > 0xdfff {
			continue
		}
		if r >= 0xdc00 {
			return fmt.Errorf("escape \\u%04x is a lone low surrogate", r)
		}
		// A high surrogate must be followed by \u and a low one.
		if i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
			if lo, ok := hex4(b, i+3); ok && lo >= 0xdc00 && lo <= 0xdfff {
				i += 6
				continue
			}
		}
		return fmt.Errorf("escape \\u%04x is a lone high surrogate", r)
	}
	return nil
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
