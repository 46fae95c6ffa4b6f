package store

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/dshare/dshare/chunker"
)

// The journal remembers the files placed in one directory, one JSON
// record a line, appended as files are placed. A torn last line (a kill
// mid-write) is skipped on load.
type journal struct {
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	dirty bool
	keys  map[string]*record
	names map[string]*record
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

func (r *record) root() chunker.Sum {
	var s chunker.Sum
	hex.Decode(s[:], []byte(r.Root))
	return s
}

// maxJournal bounds what is read at start; a larger journal is set aside
// and a new one begun.
const maxJournal = 256 << 20

func openJournal(name string) (*journal, error) {
	j := &journal{keys: map[string]*record{}, names: map[string]*record{}}
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
		if json.Unmarshal(sc.Bytes(), &r) != nil || len(r.Root) != 2*chunker.SumSize || r.ID == "" {
			continue
		}
		j.put(&r)
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

func (j *journal) put(r *record) {
	if old := j.keys[r.ID]; old != nil && j.names[old.Name] == old {
		delete(j.names, old.Name)
	}
	j.keys[r.ID] = r
	j.names[r.Name] = r
}

// len returns the number of files remembered.
func (j *journal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.keys)
}

func (j *journal) byKey(id string) *record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.keys[id]
}

func (j *journal) byName(name string) *record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.names[name]
}

func (j *journal) add(k Key, id string, root chunker.Sum, name string, fileMTime int64, ino uint64) error {
	r := &record{Peer: k.Peer, Path: k.Path, Size: k.Size, MTime: k.MTime, Chunk: k.ChunkSize,
		ID: id, Root: hex.EncodeToString(root[:]), Name: name, FileMTime: fileMTime, Ino: ino}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.put(r)
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
