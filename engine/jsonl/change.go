package jsonl

import (
	"encoding/json"

	"github.com/antientropy/grove/engine"
)

// Op is what a change does to a live tree.
type Op string

// The operations of a change line.
const (
	OpPut    Op = "put"    // insert a row, or replace Old by it
	OpDelete Op = "delete" // replace Old by a tombstone written at TS
	OpPurge  Op = "purge"  // remove Old entirely
)

// Change is one line of a changes file (docs/LIVE.md):
//
//	{"op": "put", "key": "k", "value": "v", "ts": 2, "old": {"value": "u", "ts": 1, "deleted": false}}
//	{"op": "delete", "key": "k", "ts": 3, "old": {"value": "v", "ts": 2}}
//	{"op": "purge", "key": "k", "old": {"ts": 3, "deleted": true}}
//
// key_hex/value_hex stand for binary bytes, in "old" too. Put's old is
// optional (absent for a new key); delete and purge need it.
type Change struct {
	Op  Op
	New engine.Row  // the row written: put and delete
	Old *engine.Row // the row it replaces or removes, or nil
}

type jsonOld struct {
	Value    *string         `json:"value"`
	ValueHex *string         `json:"value_hex"`
	TS       json.RawMessage `json:"ts"`
	Deleted  *bool           `json:"deleted"`
}

type jsonChange struct {
	Op       string          `json:"op"`
	Key      *string         `json:"key"`
	KeyHex   *string         `json:"key_hex"`
	Value    *string         `json:"value"`
	ValueHex *string         `json:"value_hex"`
	TS       json.RawMessage `json:"ts"`
	Deleted  *bool           `json:"deleted"`
	Old      *jsonOld        `json:"old"`
}

// NextChange reads the next change into c, whose slices stay valid until the
// next call. It returns io.EOF after the last. Beyond the syntax it checks
// what a tree cannot: the fields each op needs, and that a put or delete is
// not older than the row it replaces (a store keeping the newest write by
// timestamp would not have replaced it).
func (r *Reader) NextChange(c *Change) error {
	line, err := r.nextLine()
	if err != nil {
		return err
	}
	return r.parseChange(line, c)
}

func (r *Reader) parseChange(line []byte, c *Change) error {
	var jc jsonChange
	if err := r.decodeLine(line, &jc, changeFields); err != nil {
		return err
	}
	var err error
	if jc.Key == nil && jc.KeyHex == nil {
		return r.errorf("no key (need \"key\" or \"key_hex\")")
	}
	if r.key, err = field(r.key[:0], jc.Key, jc.KeyHex, "key"); err != nil {
		return r.errorf("%v", err)
	}
	if err := r.checkKey(r.key); err != nil {
		return err
	}
	if jc.Deleted != nil {
		return r.errorf("a change has no \"deleted\": use op \"delete\"")
	}
	*c = Change{Op: Op(jc.Op), New: engine.Row{Key: r.key}}
	switch c.Op {
	case OpPut:
		if r.value, err = field(r.value[:0], jc.Value, jc.ValueHex, "value"); err != nil {
			return r.errorf("%v", err)
		}
		if c.New.TS, err = r.parseTS(jc.TS, "ts"); err != nil {
			return err
		}
		c.New.Value = r.value
	case OpDelete:
		if jc.Value != nil || jc.ValueHex != nil {
			return r.errorf("a delete has no value")
		}
		if c.New.TS, err = r.parseTS(jc.TS, "ts"); err != nil {
			return err
		}
		c.New.Deleted = true
	case OpPurge:
		if jc.Value != nil || jc.ValueHex != nil || len(jc.TS) != 0 {
			return r.errorf("a purge has only a key and old")
		}
	default:
		return r.errorf("op %q: want put, delete or purge", jc.Op)
	}
	if jc.Old == nil {
		if c.Op != OpPut {
			return r.errorf("a %s needs \"old\": the row it replaces", c.Op)
		}
		return nil
	}
	if r.oldValue, err = field(r.oldValue[:0], jc.Old.Value, jc.Old.ValueHex, "old.value"); err != nil {
		return r.errorf("%v", err)
	}
	r.old = engine.Row{Key: r.key, Value: r.oldValue, Deleted: jc.Old.Deleted != nil && *jc.Old.Deleted}
	if r.old.TS, err = r.parseTS(jc.Old.TS, "old.ts"); err != nil {
		return err
	}
	if c.Op != OpPurge && c.New.TS < r.old.TS {
		return r.errorf("ts %d is older than old.ts %d: the store would have kept the old row", c.New.TS, r.old.TS)
	}
	c.Old = &r.old
	return nil
}
