package grovepebble

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// This file is where the Node meets the disk before and around Pebble:
// whether a path may be opened at all, its lock, and what becomes of
// Pebble's corruption reports and fatal errors.

// checkDir decides, before anything is written, whether dir may be opened:
// a mistyped path must not become a new empty node that a repair then fills
// with a peer's whole replica. It reports whether dir holds a Pebble
// database; without one, only create lets Open go on, and only into a
// missing path or an empty directory.
func checkDir(fs vfs.FS, dir string, create bool) (exists bool, err error) {
	fi, err := fs.Stat(dir)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		if !create {
			return false, fmt.Errorf("%w: %s does not exist", ErrNotExist, dir)
		}
		return false, nil
	case err != nil:
		return false, err
	case !fi.IsDir():
		return false, fmt.Errorf("%w: %s is a file, not a database directory", ErrNotNode, dir)
	}
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		// Unreadable, or Pebble's markers in it are: not knowable as a
		// node or not, so neither sentinel.
		return false, fmt.Errorf("looking for a Pebble database in %s: %w", dir, err)
	}
	if desc.Exists {
		return true, nil
	}
	names, err := fs.List(dir)
	if err != nil {
		return false, err
	}
	if len(names) == 0 {
		if !create {
			return false, fmt.Errorf("%w: %s is an empty directory", ErrNotExist, dir)
		}
		return false, nil
	}
	// Even with create: a new database among another application's files
	// would mix the two, and a mistyped path is the likelier story.
	slices.Sort(names)
	return false, fmt.Errorf("%w: %s is not a Pebble database (no MANIFEST; it holds %d entries, such as %q)", ErrNotNode, dir, len(names), names[0])
}

// lockDir takes Pebble's directory lock (its LOCK file) ahead of
// pebble.Open, so that a failure to get it is known to be the lock and can
// say so, rather than "resource temporarily unavailable".
func lockDir(fs vfs.FS, dir string) (*pebble.Lock, error) {
	l, err := pebble.LockDirectory(dir, fs)
	if err == nil {
		return l, nil
	}
	var pathErr *iofs.PathError
	switch {
	case errors.As(err, &pathErr):
		// Creating the LOCK file failed (permissions, say): no one holds it.
		return nil, err
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES):
		// What fcntl(F_SETLK) returns, per POSIX, when another process holds
		// the lock.
		return nil, fmt.Errorf("%w: the database at %s is in use by another process (it holds the LOCK file)", ErrLocked, dir)
	case strings.Contains(err.Error(), "lock held by current process"):
		// Pebble's own check for a second open in one process: a plain
		// error with no sentinel, so its text is all there is to go by.
		return nil, fmt.Errorf("%w: the database at %s is in use: this process has it open already", ErrLocked, dir)
	}
	return nil, err
}

// corruptError is a Pebble corruption report made into one line that names
// the damaged file. It matches ErrCorrupt and, through the error it wraps,
// pebble.ErrCorruption.
type corruptError struct {
	where string // the file, or "the database at DIR"
	err   error
}

func (e *corruptError) Error() string {
	return "grovepebble: corrupt data in " + e.where + ": " + firstLine(e.err)
}

func (e *corruptError) Unwrap() []error { return []error{ErrCorrupt, e.err} }

// asCorrupt turns an error that Pebble marks as corruption into a
// corruptError naming the file — Pebble attaches the file's path to the
// corruptions it finds reading a table — or else the database directory
// (a damaged MANIFEST or OPTIONS file). Other errors pass unchanged.
func asCorrupt(dir string, err error) error {
	if err == nil || !pebble.IsCorruptionError(err) {
		return err
	}
	if ce := (*corruptError)(nil); errors.As(err, &ce) {
		return err
	}
	where := "the database at " + dir
	if info := pebble.ExtractDataCorruptionInfo(err); info != nil && info.Path != "" {
		where = info.Path
	}
	return &corruptError{where: where, err: err}
}

// firstLine is the first line of err's message: Pebble's errors carry
// stack traces and detail lines after it, which bury the cause.
func firstLine(err error) string {
	if err == nil {
		return ""
	}
	return cutLine(err.Error())
}

func cutLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// events receives Pebble's corruption and background-error events in place
// of Pebble's defaults, the first of which calls Logger.Fatalf — with
// Pebble's default logger, os.Exit(1). Pebble returns a corruption to the
// read that found it anyway, so that read's caller reports it; a process
// need not die for it.
type events struct {
	log pebble.Logger
	// table, if set, is told each damaged table's report.
	table func(pebble.DataCorruptionInfo)
	// opened is set once Open has returned the Node: until then a
	// corruption is Open's error and is not logged as well.
	opened atomic.Bool
	mu     sync.Mutex
	logged map[string]bool // files whose corruption was logged
}

// install sets the handlers the caller's listener leaves unset.
func (e *events) install(o *pebble.Options) {
	var l pebble.EventListener
	if o.EventListener != nil {
		l = *o.EventListener
	}
	if l.DataCorruption == nil {
		l.DataCorruption = e.corruption
	}
	if l.BackgroundError == nil {
		l.BackgroundError = e.background
	}
	o.EventListener = &l
}

// corruption logs a damaged file once: a compaction may meet it long before
// any call of the Node does, and then again at every retry.
func (e *events) corruption(info pebble.DataCorruptionInfo) {
	if e.table != nil {
		e.table(info)
	}
	if !e.opened.Load() {
		return
	}
	e.mu.Lock()
	seen := e.logged[info.Path]
	if e.logged == nil {
		e.logged = map[string]bool{}
	}
	e.logged[info.Path] = true
	e.mu.Unlock()
	if !seen {
		e.log.Errorf("grovepebble: corrupt data in %s: %s", info.Path, firstLine(info.Details))
	}
}

// background logs a background error as Pebble's default does, except a
// corruption that corruption has reported already.
func (e *events) background(err error) {
	if pebble.ExtractDataCorruptionInfo(err) != nil {
		return
	}
	e.log.Errorf("background error: %s", firstLine(err))
}

// quietLogger is the Pebble logger of a Node opened without one. It drops
// Pebble's informational messages — a node's own output should not be
// buried under a line per WAL replayed — and keeps its errors. Its Fatalf
// does not exit: Pebble calls Fatalf where it cannot go on (a failed WAL or
// MANIFEST write, a broken invariant), and must not return into that state,
// so Fatalf panics with a *fatalError that the Node's methods recover at
// their boundary (see catch). A Fatalf in one of Pebble's own goroutines (a
// flush, a compaction) has no such boundary and ends the process, as
// Pebble requires.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Errorf(format string, args ...any) { pebble.DefaultLogger.Errorf(format, args...) }

func (quietLogger) Fatalf(format string, args ...any) {
	panic(&fatalError{msg: cutLine(fmt.Sprintf(format, args...))})
}

// fatalError is what quietLogger.Fatalf panics with, and what the Node's
// methods then return. It matches ErrFatal.
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return ErrFatal.Error() + ": " + e.msg }

func (e *fatalError) Unwrap() error { return ErrFatal }

// asFatal returns the fatalError a recovered panic carries, and panics on
// with anything else: only Pebble's Fatalf is the Node's to turn into an
// error.
func asFatal(r any) *fatalError {
	f, ok := r.(*fatalError)
	if !ok {
		panic(r)
	}
	return f
}

// catchFatal, deferred, turns a Fatalf panic into the error *errp.
func catchFatal(errp *error) {
	if r := recover(); r != nil {
		*errp = asFatal(r)
	}
}

// catch, deferred by every method that calls into Pebble, turns a Fatalf
// panic into the error *errp and makes the Node refuse every later call:
// Pebble stopped in a state nothing may build on.
func (n *Node) catch(errp *error) {
	if r := recover(); r != nil {
		f := asFatal(r)
		n.fatal.Store(f)
		*errp = f
	}
}

// DefaultBlockCache is the size of the block cache a Node gives Pebble when
// Options.Pebble brings none: the maintainer looks up every written key's
// previous version, and Pebble's own default cache is too small to keep
// the index and filter blocks of a node's tables resident.
const DefaultBlockCache = 128 << 20

// lookupOptions fills in the Pebble options the maintainer's lookup of
// each written key's previous version depends on, where the caller left
// them unset: a bloom filter on every level, so that looking up a key that
// is not stored (every insert) skips the tables that do not hold it, and a
// block cache of cacheBytes. It returns the cache it made, which the Node
// releases after Pebble closes, or nil.
func lookupOptions(o *pebble.Options, cacheBytes int64) *pebble.Cache {
	for i := range o.Levels {
		if o.Levels[i].FilterPolicy == nil {
			o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		}
	}
	if o.Cache != nil {
		return nil
	}
	o.Cache = pebble.NewCache(cacheBytes)
	return o.Cache
}

// openPebble opens the database with o, upgrading a database of layout 1
// on the way: those were written with Pebble's default merge operator
// named in their OPTIONS file, but hold no merge operands (every write was
// a Set), so naming grovepebble.Merger there instead changes no stored
// value. Pebble refuses a merger other than the one the file names, and
// has no option to rename it, hence the rewrite of the file. A database
// that is not a node's is left as it is, and refused as Open refuses it
// (ErrNotNode, or ErrNotExist for an empty one without create): another
// application's may hold operands of Pebble's merger.
func openPebble(dir string, o *pebble.Options, create bool) (*pebble.DB, error) {
	db, err := pebble.Open(dir, o)
	if err == nil || !strings.Contains(err.Error(), `merger name from file "`+pebble.DefaultMerger.Name+`"`) {
		return db, err
	}
	ro := o.Clone()
	ro.Merger, ro.ReadOnly = pebble.DefaultMerger, true
	old, rerr := pebble.Open(dir, ro)
	if rerr != nil {
		return nil, fmt.Errorf("%w (and opening it read-only to see whose it is: %v)", err, rerr)
	}
	layout, first, cerr := formatOf(old)
	if cerr = errors.Join(cerr, old.Close()); cerr != nil {
		return nil, cerr
	}
	switch {
	case layout == 0 && first != nil:
		return nil, fmt.Errorf("%w: the Pebble database at %s was not written by grove: it holds keys (such as %s) but no format record (key 0x00 \"format\")", ErrNotNode, dir, keyText(first))
	case layout == 0 && !create:
		return nil, fmt.Errorf("%w: %s holds an empty Pebble database, not yet a node", ErrNotExist, dir)
	case layout > 1:
		return nil, err
	}
	if err := renameMerger(o.FS, dir); err != nil {
		return nil, fmt.Errorf("grovepebble: naming %s the merge operator of the database at %s: %w", MergerName, dir, err)
	}
	return pebble.Open(dir, o)
}

// formatOf returns the layout version in db's format record (0 if there is
// none) and, without one, the first key db holds, if any.
func formatOf(db *pebble.DB) (layout byte, first []byte, err error) {
	v, closer, err := db.Get(metaFormat)
	if err == nil {
		if len(v) > 0 {
			layout = v[0]
		}
		return layout, nil, closer.Close()
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, err
	}
	it, err := db.NewIter(nil)
	if err != nil {
		return 0, nil, err
	}
	if it.First() {
		first = slices.Clone(it.Key())
	}
	return 0, first, errors.Join(it.Error(), it.Close())
}

// renameMerger rewrites the newest OPTIONS file of the database in dir so
// that it names Merger: a new file beside it, synced, renamed over it, and
// the directory synced.
func renameMerger(fs vfs.FS, dir string) error {
	if fs == nil {
		fs = vfs.Default
	}
	names, err := fs.List(dir)
	if err != nil {
		return err
	}
	newest, num := "", -1
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, "OPTIONS-")
		if !ok {
			continue
		}
		if k, err := strconv.Atoi(rest); err == nil && k > num {
			newest, num = name, k
		}
	}
	if newest == "" {
		return fmt.Errorf("no OPTIONS file")
	}
	path := fs.PathJoin(dir, newest)
	f, err := fs.Open(path)
	if err != nil {
		return err
	}
	old, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	from, to := "merger="+pebble.DefaultMerger.Name+"\n", "merger="+MergerName+"\n"
	if bytes.Count(old, []byte(from)) != 1 {
		return fmt.Errorf("%s names no merge operator %s", newest, pebble.DefaultMerger.Name)
	}
	tmp := path + ".grove-tmp"
	w, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = w.Write(bytes.Replace(old, []byte(from), []byte(to), 1))
	if err == nil {
		err = w.Sync()
	}
	if err = errors.Join(err, w.Close()); err != nil {
		fs.Remove(tmp)
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
