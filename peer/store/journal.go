package store

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/wire"
)

// The journal remembers the files placed in one directory, one JSON
// record a line, appended as files are placed. A torn last line (a kill
// mid-write) is skipped on load.
type journal struct {
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	dirty bool
	keys  map[fileID]*placed
	names map[string]*placed
}

// fileID is a key's id in binary: half the size of its hex.
type fileID [24]byte

func parseID(id string) (fileID, bool) {
	var b fileID
	src, ver, ok := strings.Cut(id, "-")
	if !ok || len(src) != 24 || len(ver) != 24 {
		return b, false
	}
	_, err1 := hex.Decode(b[:12], []byte(src))
	_, err2 := hex.Decode(b[12:], []byte(ver))
	return b, err1 == nil && err2 == nil
}

// placed is what the journal keeps in memory of one placed file: what
// Completed needs, in a few dozen bytes, for folders of a million files.
type placed struct {
	Name      string
	Root      chunker.Sum
	Size      uint64
	Chunk     uint32
	FileMTime int64
	Ino       uint64
	id        fileID
}

// record is one placed file. Fields are never renamed: the journal is
// read by later versions.
type record struct {
	Peer      string `json:"peer"`
	Path      string `json:"path"` // as offered
	Size      uint64 `json:"size"`
	MTime     int64  `json:"mtime"` // the sender's
	Chunk     uint32 `json:"chunk"`
	ID        string `json:"id"`
	Root      string `json:"root"`
	Name      string `json:"name"`          // where it was placed
	FileMTime int64  `json:"file_mtime"`    // as placed, to notice a later change
	Ino       uint64 `json:"ino,omitempty"` // the file placed: a name that holds another is not it
}

// placed returns the record in memory, or false if it is malformed.
func (r *record) placed() (*placed, bool) {
	id, ok := parseID(r.ID)
	p := &placed{Name: r.Name, Size: r.Size, Chunk: r.Chunk, FileMTime: r.FileMTime, Ino: r.Ino, id: id}
	if n, err := hex.Decode(p.Root[:], []byte(r.Root)); err != nil || n != chunker.SumSize {
		return nil, false
	}
	return p, ok
}

// maxJournal bounds what is read at start; a larger journal is set aside
// and a new one begun.
const maxJournal = 256 << 20

func openJournal(name string) (*journal, error) {
	j := &journal{keys: map[fileID]*placed{}, names: map[string]*placed{}}
	if name == "" {
		return j, nil
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(name); err == nil && (!fi.Mode().IsRegular() || fi.Size() > maxJournal) {
		if err := os.Rename(name, name+".old"); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		var r record
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		if p, ok := r.placed(); ok {
			j.put(p)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		f.Close()
		return nil, err
	}
	j.f, j.w = f, bufio.NewWriter(f)
	// A torn last line would swallow the next record: start on a new line.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, fi.Size()-1); err == nil && b[0] != '\n' {
			j.w.WriteByte('\n')
		}
	}
	return j, nil
}

func (j *journal) put(p *placed) {
	if old := j.keys[p.id]; old != nil && j.names[old.Name] == old {
		delete(j.names, old.Name)
	}
	j.keys[p.id] = p
	j.names[p.Name] = p
}

// len returns the number of files remembered.
func (j *journal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.keys)
}

func (j *journal) byKey(id string) *placed {
	b, ok := parseID(id)
	if !ok {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.keys[b]
}

func (j *journal) byName(name string) *placed {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.names[name]
}

func (j *journal) add(k Key, id string, root chunker.Sum, name string, fileMTime int64, ino uint64) error {
	r := &record{Peer: k.Peer, Path: k.Path, Size: k.Size, MTime: k.MTime, Chunk: k.ChunkSize,
		ID: id, Root: hex.EncodeToString(root[:]), Name: name, FileMTime: fileMTime, Ino: ino}
	p, ok := r.placed()
	if !ok {
		return fmt.Errorf("%w: journal record of %s", wire.ErrInternal, k.Path)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.put(p)
	if j.w == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	j.w.Write(b)
	j.dirty = true
	return j.w.WriteByte('\n')
}

// sync makes the records added so far durable.
func (j *journal) sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.w == nil || !j.dirty {
		return nil
	}
	if err := j.w.Flush(); err != nil {
		return diskErr(err)
	}
	j.dirty = false
	return diskErr(j.f.Sync())
}

func (j *journal) close() {
	_ = j.sync()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f, j.w = nil, nil
	}
}
