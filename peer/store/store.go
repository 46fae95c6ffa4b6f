package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/wire"
)

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// Journal is the file that remembers completed files; "" keeps none.
	Journal string
	// MaxOpen bounds the temporary files held open at once, whatever the
	// number of files being received.
	MaxOpen int
}

// StageName is the private directory, inside the target directory, that
// holds temporary files while they are received. Offers may not use it.
const StageName = ".dshare"

// DefaultMaxOpen is the default bound on open temporary files.
const DefaultMaxOpen = 128

// ErrBusy means another live transfer is receiving the same file.
var ErrBusy = wire.ErrBusy

// Key identifies a file being received: the authenticated sender, the
// manifest entry and the chunking. Temporary files belong to one key.
type Key struct {
	Peer      string
	Path      string
	Size      uint64
	MTime     int64
	ChunkSize uint32

	cached string // id(), once computed through a *Key
}

// Identified returns k with its id computed, so that the store's lookups
// of it do not hash it again.
func (k Key) Identified() Key {
	k.ident()
	return k
}

// ident returns the key's id, computing it once.
func (k *Key) ident() string {
	if k.cached == "" {
		k.cached = k.id()
	}
	return k.cached
}

// id names the key's temporary files: "<source>-<version>", two hashes,
// so that it fits NAME_MAX whatever the path and two senders never share
// a file. The source half covers the sender and path only, so that a
// newer version of the same file supersedes an older partial one.
func (k Key) id() string {
	b := []byte("dshare file v1\x00")
	b = binary.AppendUvarint(b, uint64(len(k.Peer)))
	b = append(b, k.Peer...)
	b = binary.AppendUvarint(b, uint64(len(k.Path)))
	b = append(b, k.Path...)
	src := chunker.Hash(b)
	b = binary.BigEndian.AppendUint64(b, k.Size)
	b = binary.BigEndian.AppendUint64(b, uint64(k.MTime))
	b = binary.BigEndian.AppendUint32(b, k.ChunkSize)
	ver := chunker.Hash(b)
	return hex.EncodeToString(src[:12]) + "-" + hex.EncodeToString(ver[:12])
}

// source returns the source half of a temporary file's name.
func source(name string) string {
	src, _, _ := strings.Cut(name, "-")
	return src
}

// Store receives files into one directory.
type Store struct {
	dir    string
	target *os.File // the directory, for *at calls
	root   *os.Root // the directory, for path walks that must stay inside
	pool   pool
	jr     *journal

	smu   sync.Mutex
	stage *stage // nil until a file needs it

	// Open directories for placing files, kept for a commit cycle so
	// that a folder of many files is not walked again for each one.
	dmu    sync.RWMutex // held shared while a directory is in use
	dirsMu sync.Mutex   // guards dirs
	dirs   map[string]*os.File

	mu       sync.Mutex
	live     map[string]*File
	mismatch map[string]bool // keys whose held copy the sender contradicted
}

// Open opens a store on dir, creating dir if need be.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxOpen <= 0 {
		opts.MaxOpen = DefaultMaxOpen
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	target, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		target.Close()
		return nil, err
	}
	jr, err := openJournal(opts.Journal)
	if err != nil {
		target.Close()
		root.Close()
		return nil, err
	}
	return &Store{dir: dir, target: target, root: root, jr: jr, pool: pool{max: opts.MaxOpen},
		live: map[string]*File{}, mismatch: map[string]bool{}}, nil
}

// maxDirs bounds the directories kept open between commits.
const maxDirs = 16

// parent returns directory p below the store's directory, open, creating
// it if need be and create is set. Call release once done with it.
func (s *Store) parent(p string, create bool) (dir *os.File, release func(), err error) {
	if p = strings.TrimSuffix(p, "/"); p == "" {
		p = "."
	}
	s.dirsMu.Lock()
	full := len(s.dirs) >= maxDirs && s.dirs[p] == nil
	s.dirsMu.Unlock()
	if full {
		s.closeDirs() // files come folder by folder: start the cache over
	}
	s.dmu.RLock()
	s.dirsMu.Lock()
	d := s.dirs[p]
	s.dirsMu.Unlock()
	if d == nil {
		d, err = s.root.Open(p)
		if create && errors.Is(err, fs.ErrNotExist) {
			if err = s.MkdirAll(p); err == nil {
				d, err = s.root.Open(p)
			}
		}
		if err != nil {
			s.dmu.RUnlock()
			return nil, nil, fmt.Errorf("%w: open %s: %w", wire.ErrBadPath, p, err)
		}
		s.dirsMu.Lock()
		if s.dirs == nil {
			s.dirs = map[string]*os.File{}
		}
		if old := s.dirs[p]; old != nil || len(s.dirs) >= maxDirs {
			s.dirsMu.Unlock()
			// Not kept: closed when done.
			return d, func() { d.Close(); s.dmu.RUnlock() }, nil
		}
		s.dirs[p] = d
		s.dirsMu.Unlock()
	}
	return d, s.dmu.RUnlock, nil
}

// closeDirs closes the directories kept open, once none is in use.
func (s *Store) closeDirs() {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.dirsMu.Lock()
	defer s.dirsMu.Unlock()
	for p, d := range s.dirs {
		d.Close()
		delete(s.dirs, p)
	}
}

// Close releases every open file. Partial files stay for a resume.
func (s *Store) Close() error {
	s.closeDirs()
	s.pool.closeAll()
	s.smu.Lock()
	if s.stage != nil {
		s.stage.close()
		s.stage = nil
		removeStageIfEmpty(s.target)
	}
	s.smu.Unlock()
	s.jr.close()
	s.root.Close()
	return s.target.Close()
}

// Tidy removes the staging directory if nothing is left in it.
func (s *Store) Tidy() {
	s.mu.Lock()
	busy := len(s.live) > 0
	s.mu.Unlock()
	if busy {
		return
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.stage != nil {
		s.stage.close()
		s.stage = nil
	}
	removeStageIfEmpty(s.target)
}

// getStage returns the staging directory, creating it if create.
func (s *Store) getStage(create bool) (*stage, error) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.stage != nil {
		return s.stage, nil
	}
	st, err := openStage(s.target, create)
	if err != nil {
		return nil, err
	}
	s.stage = st
	return st, nil
}

// MkdirAll creates directory p below the store's directory.
func (s *Store) MkdirAll(p string) error {
	if p == "." {
		return nil
	}
	if err := s.root.MkdirAll(p, 0o777); err != nil {
		return fmt.Errorf("%w: create %s: %w", wire.ErrBadPath, p, err)
	}
	return nil
}

// Held describes a file the store already holds complete.
type Held struct {
	Name    string      // where it is, relative to the directory
	Root    chunker.Sum // its whole-file hash, as verified when it arrived
	Present bool        // received from another offer: identical only if the roots match
}

// Completed reports whether k is already here: received complete from
// the same sender's same entry, or the same name holds a file dshare
// placed with the same size (then the sender's root must confirm it).
// Either way the file must still be as dshare left it.
func (s *Store) Completed(k Key) (Held, bool) {
	if s.jr.len() == 0 {
		return Held{}, false // nothing received here yet: no hashing
	}
	id := k.ident()
	s.mu.Lock()
	contradicted := s.mismatch[id]
	s.mu.Unlock()
	if contradicted {
		return Held{}, false
	}
	if r := s.jr.byKey(id); r != nil && s.unchanged(r) {
		return Held{Name: r.Name, Root: r.Root}, true
	}
	if r := s.jr.byName(k.Path); r != nil && r.Size == k.Size && r.Chunk == k.ChunkSize && s.unchanged(r) {
		return Held{Name: r.Name, Root: r.Root, Present: true}, true
	}
	return Held{}, false
}

// Remembers reports whether the store may hold anything of an offer:
// files it placed before, or partial files. When it does not, looking
// keys up is pointless.
func (s *Store) Remembers() bool {
	if s.jr.len() > 0 {
		return true
	}
	_, err := s.getStage(false)
	return !errors.Is(err, fs.ErrNotExist)
}

// Contradict records that the sender's root for k differs from the copy
// Completed reported, so that k is received again.
func (s *Store) Contradict(k Key) {
	s.mu.Lock()
	s.mismatch[k.ident()] = true
	s.mu.Unlock()
}

func (s *Store) unchanged(r *placed) bool {
	dir, base := path.Split(r.Name)
	parent, release, err := s.parent(dir, false)
	if err != nil {
		return false
	}
	defer release()
	fi, ok := statAt(parent, base)
	return ok && fi.regular && fi.size == r.Size && fi.mtime == r.FileMTime && (r.Ino == 0 || fi.ino == r.Ino)
}

// PartialBytes estimates what temporary files already hold for the keys
// that next yields until it returns false, without loading any resume
// state.
func (s *Store) PartialBytes(next func(*Key) bool) uint64 {
	st, err := s.getStage(false)
	if err != nil {
		return 0
	}
	names, _ := st.names()
	parts := make(map[string]bool)
	for _, n := range names {
		if id, ok := strings.CutSuffix(n, partExt); ok {
			parts[id] = true
		}
	}
	var n uint64
	var k Key
	for len(parts) > 0 && next(&k) {
		k.cached = ""
		if id := k.ident(); parts[id] {
			if b, ok := st.allocated(id + partExt); ok {
				n += min(b, k.Size)
			}
		}
	}
	return n
}

// Partials returns a test for keys of which an earlier run left state,
// read from one listing of the staging directory, so that files with
// nothing held cost no system call each. Testing a key also discards
// what earlier runs left of other versions of the same file from the
// same sender: a changed source supersedes them. A staging directory
// that is not dshare's own is an error.
func (s *Store) Partials() (func(k Key, held bool) bool, error) {
	st, err := s.getStage(false)
	if errors.Is(err, fs.ErrNotExist) {
		return func(Key, bool) bool { return false }, nil
	}
	if err != nil {
		return nil, err
	}
	names, _ := st.names()
	ids := make(map[string]bool)
	bySource := make(map[string][]string)
	for _, n := range names {
		if id, ok := strings.CutSuffix(n, stateExt); ok {
			ids[id] = true
		}
		if strings.HasSuffix(n, ".tmp") && !s.isLive(n) {
			st.remove(n) // a state being written when the receiver died
			continue
		}
		if src := source(n); len(src) == 24 {
			bySource[src] = append(bySource[src], n)
		}
	}
	// held says the key's file is already in place: whatever is left of
	// it here (a receiver killed between placing it and cleaning up)
	// goes too.
	return func(k Key, held bool) bool {
		if len(bySource) == 0 {
			return false
		}
		id := k.ident()
		src := source(id)
		if old := bySource[src]; len(old) > 0 {
			delete(bySource, src)
			for _, n := range old {
				if (held || !strings.HasPrefix(n, id+".")) && !s.isLive(n) {
					st.remove(n)
				}
			}
		}
		return !held && ids[id]
	}, nil
}

// isLive reports whether the temporary file name belongs to a file being
// received now.
func (s *Store) isLive(name string) bool {
	id, _, _ := strings.Cut(name, ".")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[id] != nil
}

const (
	partExt  = ".part"
	stateExt = ".state"
)

// Begin starts receiving the file k, picking up what an earlier run of
// the same sender's same entry left. Only one File per key is live.
func (s *Store) Begin(k Key, mode uint32) (*File, error) {
	if k.ChunkSize == 0 {
		return nil, fmt.Errorf("%w: chunk size 0", wire.ErrProtocol)
	}
	id := k.ident()
	s.mu.Lock()
	if s.live[id] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s is being received from the same sender already", ErrBusy, k.Path)
	}
	f := &File{s: s, key: k, id: id, mode: mode, have: new(chunker.Set), pending: new(chunker.Set),
		unverified: new(chunker.Set), sums: make([]chunker.Sum, chunker.Chunks(k.Size, k.ChunkSize))}
	s.live[id] = f
	s.mu.Unlock()
	if err := f.resume(); err != nil {
		f.Release()
		return nil, err
	}
	return f, nil
}

// Commit makes what files have written durable and returns, per file,
// the ranges that became durable. One sync covers all of them.
func (s *Store) Commit(files []*File) ([]*chunker.Set, error) {
	// A new cycle: directories are looked up afresh, so that one renamed
	// meanwhile is not written through an old descriptor.
	s.closeDirs()
	snaps := make([]*chunker.Set, len(files))
	var fds []*os.File
	for i, f := range files {
		f.mu.Lock()
		snaps[i] = f.pending.Clone()
		f.mu.Unlock()
		if syncOnEvict {
			f.fmu.RLock()
			if f.fd != nil {
				fds = append(fds, f.fd)
			}
			f.fmu.RUnlock()
		}
	}
	if err := s.Sync(fds); err != nil {
		return nil, err
	}
	for i, f := range files {
		f.mu.Lock()
		f.have.Union(snaps[i])
		f.pending.Subtract(snaps[i])
		f.mu.Unlock()
	}
	return snaps, nil
}

// Sync makes everything written so far durable: data, placed names and
// the journal.
func (s *Store) Sync(fds []*os.File) error {
	if err := s.jr.sync(); err != nil {
		return err
	}
	st, err := s.getStage(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return st.syncAll(fds)
}

// numbered returns p for i == 0 and "dir/name (i).ext" otherwise.
func numbered(p string, i int) string {
	if i == 0 {
		return p
	}
	dir, base := path.Split(p)
	ext := path.Ext(base)
	if ext == base || len(base) > 0 && base[0] == '.' && countDots(base) == 1 {
		ext = ""
	}
	stem, tag := base[:len(base)-len(ext)], fmt.Sprintf(" (%d)", i)
	if len(tag)+len(ext) >= maxName { // no room for a stem: number the whole name
		stem, ext = base, ""
	}
	for len(stem)+len(tag)+len(ext) > maxName && stem != "" {
		_, n := utf8.DecodeLastRuneInString(stem) // keep the name valid UTF-8
		stem = stem[:len(stem)-n]
	}
	return dir + stem + tag + ext
}

// maxName is NAME_MAX on common filesystems.
const maxName = 255

func countDots(s string) int {
	n := 0
	for i := range len(s) {
		if s[i] == '.' {
			n++
		}
	}
	return n
}
