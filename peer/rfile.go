package peer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/wire"
)

// rfile is one file being received: a temporary file beside its final
// name, and the resume state recording which of its chunks are held.
type rfile struct {
	idx       int
	entry     wire.Entry
	part      string // temporary file, relative to the target directory
	statePath string
	final     string

	// Guarded by the transfer's mutex.
	st           *chunker.State
	pending      *chunker.Set // written and verified, not yet durable
	savedPending uint64       // pending's size when the state was last saved
	sum          []byte       // whole-file hash from the sender
	complete     bool

	fmu      sync.Mutex
	f        *os.File // buffered
	direct   *os.File // O_DIRECT, for aligned chunks; nil where unsupported
	noDirect bool
}

func newRFile(i int, e wire.Entry, peer string, chunk uint32) *rfile {
	part, state := tempNames(e.Path)
	return &rfile{
		idx: i, entry: e, part: part, statePath: state,
		st:      chunker.NewState(peer, e.Path, e.Size, e.MTime, chunk),
		pending: new(chunker.Set),
	}
}

// tempNames returns the temporary file and the resume state kept beside
// the file at p while it is received.
func tempNames(p string) (part, state string) {
	dir, base := path.Split(p)
	if len(base)+len(stateSuffix)+1 > maxComponent {
		sum := chunker.Hash([]byte(p))
		base = hex.EncodeToString(sum[:16])
	}
	return dir + "." + base + partSuffix, dir + "." + base + stateSuffix
}

// resume picks up the chunks a previous run left, if its state belongs to
// the same transfer of the same file and the chunks still verify.
func (f *rfile) resume(root *os.Root) {
	b, err := root.ReadFile(f.statePath)
	if err != nil {
		return
	}
	var st chunker.State
	if st.UnmarshalBinary(b) != nil || !st.Matches(f.st) {
		f.discard(root)
		return
	}
	pf, err := root.OpenFile(f.part, os.O_RDWR, 0)
	if err != nil {
		f.discard(root)
		return
	}
	good, err := chunker.VerifyAt(pf, st.Size, st.ChunkSize, st.Have, st.Sums)
	if err == nil {
		// The state lists chunks written but perhaps not yet durable when
		// the last run ended; they count as held only once they are.
		err = pf.Sync()
	}
	if err != nil {
		pf.Close()
		f.discard(root)
		return
	}
	st.Have = good
	f.st, f.f = &st, pf
}

// discard forgets everything held of the file.
func (f *rfile) discard(root *os.Root) {
	f.closeFile()
	_ = root.Remove(f.part)
	_ = root.Remove(f.statePath)
	f.st = chunker.NewState(f.st.Peer, f.st.Path, f.st.Size, f.st.MTime, f.st.ChunkSize)
	f.pending = new(chunker.Set)
}

// checkChunk checks that [off, off+n) is exactly one chunk of the file and
// returns its index.
func (f *rfile) checkChunk(off uint64, n uint32) (int, error) {
	cs := uint64(f.st.ChunkSize)
	idx := off / cs
	if off%cs != 0 || idx >= uint64(len(f.st.Sums)) {
		return 0, fmt.Errorf("%w: data at offset %d of %s (%d bytes)", wire.ErrProtocol, off, Escape(f.entry.Path), f.entry.Size)
	}
	if r := chunker.ChunkRange(int(idx), f.st.Size, f.st.ChunkSize); r.Len() != uint64(n) {
		return 0, fmt.Errorf("%w: chunk %d of %s is %d bytes, not %d", wire.ErrProtocol, idx, Escape(f.entry.Path), r.Len(), n)
	}
	return int(idx), nil
}

func (f *rfile) full() bool { return f.st.Have.Contains(0, f.entry.Size) }

func (f *rfile) open(root *os.Root) (*os.File, error) {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	if f.f == nil {
		pf, err := root.OpenFile(f.part, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, diskErr(err)
		}
		f.f = pf
	}
	return f.f, nil
}

// writeAt writes a verified chunk. Aligned chunks bypass the page cache:
// the data is not read again soon, and on small machines copying it
// into the page cache costs as much CPU as the network stack.
func (f *rfile) writeAt(root *os.Root, p []byte, off uint64) error {
	pf, err := f.open(root)
	if err != nil {
		return err
	}
	if d := f.openDirect(root); d != nil && directOK(p, off) {
		pf = d
	}
	if _, err := pf.WriteAt(p, int64(off)); err != nil {
		return diskErr(err)
	}
	return nil
}

func (f *rfile) sync() error {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	if f.f == nil {
		return nil
	}
	return diskErr(f.f.Sync())
}

func (f *rfile) closeFile() {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	if f.direct != nil {
		f.direct.Close()
		f.direct = nil
	}
}

// place gives the verified temporary file its mode and time and moves it
// to its final name. An existing file is kept: the new one gets the first
// free name of "name (1).ext", "name (2).ext", ..., unless overwrite.
func (f *rfile) place(root *os.Root, overwrite bool) (string, error) {
	pf, err := f.open(root)
	if err != nil {
		return "", err
	}
	if err := pf.Sync(); err != nil {
		return "", diskErr(err)
	}
	_ = pf.Chmod(fs.FileMode(f.entry.Mode) & fs.ModePerm)
	f.closeFile()
	if f.entry.MTime != 0 {
		mt := time.Unix(0, f.entry.MTime)
		_ = root.Chtimes(f.part, mt, mt)
	}
	if overwrite {
		if err := root.Rename(f.part, f.entry.Path); err != nil {
			return "", fmt.Errorf("%w: %s: %w", wire.ErrExists, Escape(f.entry.Path), err)
		}
		return f.entry.Path, nil
	}
	for i := 0; i < 1000; i++ {
		name := numbered(f.entry.Path, i)
		err := root.Link(f.part, name)
		if err == nil {
			_ = root.Remove(f.part)
			return name, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// No hard links here: check, then rename.
		if _, serr := root.Lstat(name); errors.Is(serr, fs.ErrNotExist) {
			if err := root.Rename(f.part, name); err != nil {
				return "", err
			}
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: %s and 999 numbered copies", wire.ErrExists, Escape(f.entry.Path))
}

// numbered returns p for i == 0 and "dir/name (i).ext" otherwise.
func numbered(p string, i int) string {
	if i == 0 {
		return p
	}
	dir, base := path.Split(p)
	ext := path.Ext(base)
	if ext == base || strings.HasPrefix(base, ".") && strings.Count(base, ".") == 1 {
		ext = ""
	}
	return fmt.Sprintf("%s%s (%d)%s", dir, strings.TrimSuffix(base, ext), i, ext)
}
