package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/wire"
)

// File is one file being received. Its methods are safe for concurrent
// use; chunks of one file may arrive on several streams at once.
type File struct {
	s    *Store
	key  Key
	id   string
	mode uint32

	mu         sync.Mutex
	have       *chunker.Set     // verified and durable
	pending    *chunker.Set     // verified and written, not yet durable
	writing    map[int]struct{} // chunks being written now, by index
	unverified *chunker.Set     // of have: taken from an earlier run, not yet re-read
	sums       []chunker.Sum    // per chunk, where have or pending covers it
	saved      uint64           // size of have ∪ pending when the state was last saved, or stale
	created    bool             // the temporary file exists
	released   bool
	savedAt    time.Time // when the state was last saved

	vmu sync.Mutex // one Verify at a time

	fmu    sync.RWMutex // guards fd; writers share it, closing takes it whole
	fd     *os.File
	direct atomic.Bool   // fd has O_DIRECT set; writers sharing fmu may set it together
	noDir  atomic.Bool   // O_DIRECT is not available for this file
	alloc  atomic.Uint64 // fd has blocks for [0, alloc), as far as dshare knows
	lru    *lruElem

	seal *sealed // set by Seal, for Link
}

// Key returns the file's key.
func (f *File) Key() Key { k := f.key; k.cached = ""; return k }

func (f *File) chunks() int { return len(f.sums) }

// resume loads the state an earlier run left. The chunks it lists count
// as held at once, so that sending resumes without waiting; Verify
// re-reads them later, and Place never places a file before it has.
func (f *File) resume() error {
	st, err := f.s.getStage(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	part := f.id + partExt
	if f.chunks() <= 1 {
		// Too small to keep state for: start over. A .part left behind
		// is replaced when the file is created.
		return nil
	}
	// The state of a file is a few bytes per chunk: refuse a larger one
	// before reading it.
	max := int64(256 + 2*len(f.key.Peer) + 2*len(f.key.Path) + 48*f.chunks())
	b, err := st.readOwn(f.id+stateExt, max)
	var state chunker.State
	if err == nil {
		err = state.UnmarshalBinary(b)
	}
	want := chunker.NewState(f.key.Peer, f.key.Path, f.key.Size, f.key.MTime, f.key.ChunkSize)
	if err == nil && !state.Matches(want) {
		err = errors.New("state of another file")
	}
	if err == nil {
		var pf *os.File
		if pf, err = st.openOwn(part, os.O_RDONLY); err == nil {
			pf.Close()
		}
	}
	if err != nil {
		st.remove(part)
		st.remove(f.id + stateExt)
		return nil
	}
	f.have = state.Have
	f.unverified = state.Have.Clone()
	f.sums = state.Sums
	f.saved = state.Have.Size()
	f.created = true
	return nil
}

// Held returns the ranges held now: verified, written, maybe not yet
// durable.
func (f *File) Held() *chunker.Set {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.have.Clone()
	h.Union(f.pending)
	return h
}

// Written reports whether every chunk is held, durable or not, without
// copying the ranges as Held does: have and pending never overlap.
func (f *File) Written() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.have.Size()+f.pending.Size() == f.key.Size
}

// Verified reports whether every chunk kept from an earlier run has been
// re-read since this run began.
func (f *File) Verified() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unverified.Size() == 0
}

// Resumed reports whether the file holds chunks from an earlier run.
func (f *File) Resumed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unverified.Size() > 0
}

// Full reports whether every chunk is held.
func (f *File) Full() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.have.Contains(0, f.key.Size)
}

// Chunk checks that [off, off+n) is exactly one chunk and returns its
// index.
func (f *File) Chunk(off uint64, n uint32) (int, error) {
	cs := uint64(f.key.ChunkSize)
	idx := off / cs
	if off%cs != 0 || idx >= uint64(f.chunks()) {
		return 0, fmt.Errorf("%w: data at offset %d of a %d-byte file", wire.ErrProtocol, off, f.key.Size)
	}
	if r := chunker.ChunkRange(int(idx), f.key.Size, f.key.ChunkSize); r.Len() != uint64(n) {
		return 0, fmt.Errorf("%w: chunk %d is %d bytes, not %d", wire.ErrProtocol, idx, r.Len(), n)
	}
	return int(idx), nil
}

// Write stores chunk idx, which the caller has verified against sum. A
// chunk already held is not written again; wrote reports which.
func (f *File) Write(idx int, p []byte, sum chunker.Sum) (wrote bool, err error) {
	r := chunker.ChunkRange(idx, f.key.Size, f.key.ChunkSize)
	f.mu.Lock()
	_, busy := f.writing[idx]
	held := f.have.Contains(r.Off, r.End) || f.pending.Contains(r.Off, r.End)
	gone := f.released
	if gone || held || busy {
		f.mu.Unlock()
		return false, nil
	}
	// The chunk is ours until written: a duplicate arriving on another
	// stream meanwhile is dropped, not written twice and counted as new
	// after the file may have been sealed.
	if f.writing == nil {
		f.writing = map[int]struct{}{}
	}
	f.writing[idx] = struct{}{}
	f.mu.Unlock()
	err = f.writeAt(p, r.Off)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.writing, idx)
	if err != nil {
		return false, err
	}
	f.sums[idx] = sum
	f.pending.Add(r.Off, r.End)
	return true, nil
}

const directAlign = 4096

// writeAt writes p at off. Aligned chunks of large files bypass the page
// cache: they are not read again soon, and on small machines copying them
// into the cache costs as much CPU as the network stack.
func (f *File) writeAt(p []byte, off uint64) error {
	aligned := len(p)%directAlign == 0 && off%directAlign == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign == 0
	end := off + uint64(len(p))
	grow := f.key.Size >= 1<<20 && end > f.alloc.Load()
	return f.use(!aligned || grow, func(fd *os.File) error {
		if grow {
			f.preallocate(fd, off, end)
		}
		if aligned != f.direct.Load() && !f.noDir.Load() && f.key.Size >= 1<<20 {
			if err := setDirect(fd, aligned); err != nil {
				f.noDir.Store(true)
			} else {
				f.direct.Store(aligned)
			}
		}
		_, err := fd.WriteAt(p, int64(off))
		return diskErr(err)
	})
}

// maxLookahead bounds the blocks a file is given ahead of its writes.
const maxLookahead = 64 << 20

// preallocate gives the file blocks ahead of a write that ends past them.
// Chunks written with O_DIRECT then overwrite allocated blocks, which ext4
// and xfs let writers do side by side; a write that allocates or extends
// the file holds the inode's lock alone while the disk works. On loopback
// that cost a tenth of the receiver's CPU and of the goodput.
//
// The blocks given never span more than twice what the file holds plus
// maxLookahead, so that a peer cannot make the receiver reserve much
// more disk than it sent; a write beyond that gets its own blocks only.
// Called with fmu held whole.
func (f *File) preallocate(fd *os.File, off, end uint64) {
	from := f.alloc.Load()
	if end <= from {
		return
	}
	f.mu.Lock()
	held := f.have.Size() + f.pending.Size()
	f.mu.Unlock()
	limit := held + (end - off) + min(maxLookahead, max(uint64(f.key.ChunkSize), held))
	to := min(f.key.Size, limit)
	if to < end {
		from, to = off, end
	}
	if !preallocate(fd, from, to) {
		to = f.key.Size // not possible here, or no room: do not ask again
	}
	f.alloc.Store(to)
}

// use runs fn with the temporary file open. exclusive keeps other
// writers out, for changing the descriptor's flags.
func (f *File) use(exclusive bool, fn func(*os.File) error) error {
	for {
		lock, unlock := f.fmu.RLock, f.fmu.RUnlock
		if exclusive {
			lock, unlock = f.fmu.Lock, f.fmu.Unlock
		}
		lock()
		if f.fd != nil {
			f.s.pool.touch(f)
			err := fn(f.fd)
			unlock()
			return err
		}
		unlock()
		f.fmu.Lock()
		if f.fd == nil {
			fd, err := f.open()
			if err != nil {
				f.fmu.Unlock()
				return err
			}
			f.fd = fd
			f.direct.Store(false)
			f.noDir.Store(false)
			f.alloc.Store(0)
			f.s.pool.add(f)
		}
		f.fmu.Unlock()
	}
}

// open creates the temporary file, or reopens it if it is provably the
// one dshare created. Called with fmu held.
func (f *File) open() (*os.File, error) {
	st, err := f.s.getStage(true)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	created := f.created
	f.mu.Unlock()
	name := f.id + partExt
	if created {
		fd, err := st.openOwn(name, os.O_RDWR)
		if err == nil {
			return fd, nil
		}
		// Gone or tampered with: whatever it held is lost.
		f.mu.Lock()
		f.have, f.pending, f.unverified = new(chunker.Set), new(chunker.Set), new(chunker.Set)
		f.saved = stale
		f.mu.Unlock()
		return nil, fmt.Errorf("%w: the temporary file of %s disappeared or was replaced (%w); sending again starts it over", wire.ErrHashMismatch, f.key.Path, err)
	}
	fd, err := st.create(name)
	if errors.Is(err, fs.ErrExist) {
		st.remove(name) // left by a run that kept no state for it
		fd, err = st.create(name)
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.created = true
	f.mu.Unlock()
	return fd, nil
}

// closeFD closes the descriptor. Called with fmu held.
func (f *File) closeFD() {
	if f.fd == nil {
		return
	}
	if syncOnEvict {
		_ = f.fd.Sync()
	}
	_ = f.fd.Close()
	f.fd = nil
}

// stale marks a saved state that lists chunks no longer held. Otherwise
// the held set only grows, so its size tells whether it changed.
const stale = ^uint64(0)

// SaveState records the chunks held now, if they changed since the last
// save, so that a killed receiver resumes where it stopped. The state
// lists chunks that may not be durable yet; a resume re-verifies them.
func (f *File) SaveState() error {
	if f.chunks() <= 1 {
		return nil
	}
	f.mu.Lock()
	st := chunker.State{Peer: f.key.Peer, Path: f.key.Path, Size: f.key.Size, MTime: f.key.MTime,
		ChunkSize: f.key.ChunkSize, Have: f.have.Clone(), Sums: f.sums}
	st.Have.Union(f.pending)
	n := st.Have.Size()
	if n == f.saved || !f.created || f.released {
		f.mu.Unlock()
		return nil
	}
	b, err := st.MarshalBinary()
	f.mu.Unlock()
	if err != nil {
		return err
	}
	stg, err := f.s.getStage(true)
	if err != nil {
		return err
	}
	if err := stg.writeAtomic(f.id+stateExt, b); err != nil {
		return err
	}
	f.mu.Lock()
	f.saved = n
	f.savedAt = time.Now()
	f.mu.Unlock()
	return nil
}

// statePace paces SaveStateDue: a state is written again only after this
// long per whole MiB it holds. A state holds every chunk's hash (128 KiB
// per GiB at the default chunk size) and is written whole: for a 64 GiB
// file a save took 13.8 ms, more than the receiver's tick. Paced, it waits
// 200 ms there (7 % of a core), while the states of files up to 8 GiB are
// saved at every tick, so that a killed receiver loses little.
const statePace = 25 * time.Millisecond

// SaveStateDue is SaveState for a periodic caller: it does nothing while
// the last save is recent for the size of the state.
func (f *File) SaveStateDue() error {
	gap := statePace * time.Duration(len(f.sums)*chunker.SumSize>>20)
	f.mu.Lock()
	due := time.Since(f.savedAt) >= gap
	f.mu.Unlock()
	if !due {
		return nil
	}
	return f.SaveState()
}

// Verify re-reads the chunks an earlier run left and drops those that
// no longer match their hashes. It returns the bytes dropped; the caller
// has them sent again.
func (f *File) Verify(ctx context.Context) (uint64, error) {
	f.vmu.Lock()
	defer f.vmu.Unlock()
	f.mu.Lock()
	todo := f.unverified.Clone()
	f.mu.Unlock()
	if todo.Size() == 0 {
		return 0, nil
	}
	st, err := f.s.getStage(false)
	if err != nil {
		return 0, err
	}
	pf, err := st.openOwn(f.id+partExt, os.O_RDONLY)
	if err != nil {
		f.mu.Lock()
		lost := f.unverified.Size()
		f.have.Subtract(f.unverified)
		f.unverified = new(chunker.Set)
		f.saved = stale
		f.mu.Unlock()
		return lost, nil
	}
	defer pf.Close()
	buf := make([]byte, f.key.ChunkSize)
	var lost uint64
	for i := range f.chunks() {
		if err := ctx.Err(); err != nil {
			return lost, err
		}
		r := chunker.ChunkRange(i, f.key.Size, f.key.ChunkSize)
		if !todo.Contains(r.Off, r.End) {
			continue
		}
		p := buf[:r.Len()]
		_, rerr := pf.ReadAt(p, int64(r.Off))
		f.mu.Lock()
		if rerr != nil || chunker.Hash(p) != f.sums[i] {
			f.have.Remove(r.Off, r.End)
			f.saved = stale
			lost += r.Len()
		}
		f.unverified.Remove(r.Off, r.End)
		f.mu.Unlock()
	}
	return lost, nil
}

// ErrLost means chunks held from an earlier run failed re-verification;
// they have to be sent again.
var ErrLost = fmt.Errorf("%w: chunks kept from an earlier run no longer verify", wire.ErrHashMismatch)

// Place checks the whole file against root and moves it under its final
// name: the offered path or, if that exists and overwrite is off, the
// first free "name (n).ext". It returns the name used. A file whose root
// does not match is discarded. Place is Seal, Store.Sync and Link in
// one; a receiver placing many files seals them all, syncs once and
// links them all.
func (f *File) Place(root chunker.Sum, overwrite bool) (string, error) {
	if err := f.Seal(root, overwrite); err != nil {
		return "", err
	}
	if err := f.s.Sync(nil); err != nil {
		return "", err
	}
	return f.Link()
}

// Seal checks the whole file against root, gives it its final mode and
// times, picks the name it will take, and records in the journal, before
// it is linked there, which file (by inode) that name will hold. After a
// crash between Link and the next sync, the record is what tells a
// restarted receiver that the file arrived; a record whose name does not
// hold that inode is ignored. A file whose root does not match is
// discarded.
func (f *File) Seal(root chunker.Sum, overwrite bool) error {
	if lost, err := f.Verify(context.Background()); err != nil {
		return err
	} else if lost > 0 {
		return fmt.Errorf("%w: %s", ErrLost, f.key.Path)
	}
	f.mu.Lock()
	full := f.have.Contains(0, f.key.Size) && f.pending.Size() == 0
	got := chunker.Root(f.key.Size, f.key.ChunkSize, f.sums)
	f.mu.Unlock()
	if !full {
		return fmt.Errorf("%w: %s is not complete", wire.ErrInternal, f.key.Path)
	}
	if got != root {
		f.Discard()
		return fmt.Errorf("%w: %s does not match the sender's hash", wire.ErrHashMismatch, f.key.Path)
	}
	dir, base := path.Split(f.key.Path)
	if dir == "" {
		dir = "."
	}
	parent, release, err := f.s.parent(dir, true)
	if err != nil {
		return err
	}
	defer release()
	st, err := f.s.getStage(true)
	if err != nil {
		return err
	}
	return f.use(true, func(fd *os.File) error {
		if err := setMeta(fd, f.id+partExt, st, f.mode, f.key.MTime); err != nil {
			return err
		}
		fi, err := fd.Stat()
		if err != nil {
			return err
		}
		f.seal = &sealed{root: got, dir: dir, base: base, overwrite: overwrite, ino: inode(fi), mtime: fi.ModTime().UnixNano()}
		f.seal.next = f.freeName(parent, 0)
		return f.s.jr.add(f.key, f.id, got, path.Join(dir, numbered(base, f.seal.next)), f.seal.mtime, f.seal.ino)
	})
}

// sealed is what Seal decided for Link.
type sealed struct {
	root      chunker.Sum
	dir, base string
	overwrite bool
	ino       uint64
	mtime     int64
	next      int // the numbered name to try first
}

// freeName returns the first i from i0 whose numbered name is free (or
// 0 with overwrite).
func (f *File) freeName(parent *os.File, i0 int) int {
	if f.seal.overwrite && i0 == 0 {
		return 0
	}
	for i := i0; i < maxCopies; i++ {
		if !existsAt(parent, numbered(f.seal.base, i)) {
			return i
		}
	}
	return maxCopies
}

const maxCopies = 1000

// Link puts a sealed file under its final name and returns the name. The
// file linked is the one verified, through its descriptor. If the name
// Seal chose was taken meanwhile, the next free one is recorded and used.
func (f *File) Link() (string, error) {
	if f.seal == nil {
		return "", fmt.Errorf("%w: %s is linked before it is sealed", wire.ErrInternal, f.key.Path)
	}
	sl := f.seal
	parent, release, err := f.s.parent(sl.dir, true)
	if err != nil {
		return "", err
	}
	defer release()
	st, err := f.s.getStage(true)
	if err != nil {
		return "", err
	}
	var name string
	err = f.use(true, func(fd *os.File) error {
		for i := sl.next; i < maxCopies; {
			cand := numbered(sl.base, i)
			err := st.place(fd, f.id+partExt, parent, cand, sl.overwrite && i == 0)
			if errors.Is(err, fs.ErrExist) {
				if i = f.freeName(parent, i+1); i < maxCopies {
					if err := f.s.jr.add(f.key, f.id, sl.root, path.Join(sl.dir, numbered(sl.base, i)), sl.mtime, sl.ino); err != nil {
						return err
					}
				}
				continue
			}
			if err != nil {
				return err
			}
			name = path.Join(sl.dir, cand)
			return nil
		}
		return fmt.Errorf("%w: %s and %d numbered copies", wire.ErrExists, f.key.Path, maxCopies-1)
	})
	if err != nil {
		return "", err
	}
	if f.chunks() > 1 { // smaller files keep no state
		st.remove(f.id + stateExt)
	}
	f.fmu.Lock()
	f.s.pool.remove(f)
	f.closeFD()
	f.fmu.Unlock()
	f.mu.Lock()
	f.created = false // nothing of it is left in the staging directory
	f.mu.Unlock()
	return name, nil
}

// Discard forgets everything held of the file.
func (f *File) Discard() {
	f.fmu.Lock()
	f.s.pool.remove(f)
	f.closeFD()
	f.fmu.Unlock()
	if st, err := f.s.getStage(false); err == nil {
		st.remove(f.id + partExt)
		st.remove(f.id + stateExt)
	}
	f.mu.Lock()
	f.have, f.pending, f.unverified = new(chunker.Set), new(chunker.Set), new(chunker.Set)
	f.created, f.saved = false, 0
	clear(f.sums)
	f.mu.Unlock()
}

// Release closes the file and lets another transfer take its key. What
// it holds stays for a resume.
func (f *File) Release() {
	_ = f.SaveState()
	f.fmu.Lock()
	f.s.pool.remove(f)
	f.closeFD()
	f.fmu.Unlock()
	f.mu.Lock()
	f.released = true
	f.mu.Unlock()
	f.s.mu.Lock()
	if f.s.live[f.id] == f {
		delete(f.s.live, f.id)
	}
	f.s.mu.Unlock()
}
