// Package mailbox keeps dshare's outbox, of what the agent has yet to
// deliver, and its inbox, of what arrived. Both are bbolt databases under
// the dshare home: every change is one transaction, durable before it is
// reported, so a killed process loses nothing it said it had done.
package mailbox

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrNoItem means no outbox item has the ID asked for.
var ErrNoItem = errors.New("no such outbox item")

// Item states.
const (
	Queued    = "queued"    // waiting for its peer or its turn
	Sending   = "sending"   // being delivered now
	Delivered = "delivered" // the receiver confirmed every file verified and placed
	Failed    = "failed"    // will not be tried again unless retried
	Canceled  = "canceled"
)

// Stamp is a file as it was when its item was queued.
type Stamp struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime"`
}

// Item is one thing to deliver to one peer.
type Item struct {
	ID       uint64    `json:"id"`
	Peer     string    `json:"peer"`            // peer ID
	Addrs    []string  `json:"addrs,omitempty"` // where it was last known to be, tried first
	Paths    []string  `json:"paths"`           // absolute sources: the originals, or the snapshot's copies
	Priority int       `json:"priority"`
	Tags     []string  `json:"tags,omitempty"`
	Note     string    `json:"note,omitempty"`
	Announce string    `json:"announce,omitempty"`
	Snapshot string    `json:"snapshot,omitempty"` // the copy's folder, removed once delivered
	Stamps   []Stamp   `json:"stamps,omitempty"`   // non-volatile items: what the files must still be
	State    string    `json:"state"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error,omitempty"`
	Bytes    uint64    `json:"bytes"`
	Sent     uint64    `json:"sent"` // confirmed by the receiver, last attempt
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	NextTry  time.Time `json:"next_try,omitempty"`
}

var (
	itemsBucket = []byte("items")
	inBucket    = []byte("entries")
	keysBucket  = []byte("keys")
)

// Outbox is the agent's queue. One process holds it open.
type Outbox struct {
	db       *bolt.DB
	instance []byte // random, made with the database
}

// OpenOutbox opens (creating) the outbox at path.
func OpenOutbox(path string) (*Outbox, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("the outbox %s is open in another process (another agent?)", path)
		}
		return nil, err
	}
	o := &Outbox{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(itemsBucket); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		if v := meta.Get([]byte("instance")); v != nil {
			o.instance = append([]byte(nil), v...)
			return nil
		}
		o.instance = make([]byte, 16)
		if _, err := rand.Read(o.instance); err != nil {
			return err
		}
		return meta.Put([]byte("instance"), o.instance)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return o, nil
}

// WireID is the ID item id is known by at its receiver: unique to this
// outbox, so that a new outbox's item 1 is not an old one's.
func (o *Outbox) WireID(id uint64) uint64 {
	h := sha256.Sum256(append(append([]byte(nil), o.instance...), key(id)...))
	return binary.BigEndian.Uint64(h[:8]) | 1 // never 0, which means none
}

// Close closes the outbox.
func (o *Outbox) Close() error { return o.db.Close() }

func key(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Add records it as queued and returns its ID.
func (o *Outbox) Add(it *Item) (uint64, error) {
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(itemsBucket)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		now := time.Now()
		it.ID, it.State, it.Created, it.Updated = id, Queued, now, now
		v, err := json.Marshal(it)
		if err != nil {
			return err
		}
		return b.Put(key(id), v)
	})
	return it.ID, err
}

// Update changes item id with f, in one transaction.
func (o *Outbox) Update(id uint64, f func(*Item) error) (*Item, error) {
	var it Item
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(itemsBucket)
		v := b.Get(key(id))
		if v == nil {
			return fmt.Errorf("%w: %d", ErrNoItem, id)
		}
		if err := json.Unmarshal(v, &it); err != nil {
			return err
		}
		if err := f(&it); err != nil {
			return err
		}
		it.Updated = time.Now()
		v, err := json.Marshal(&it)
		if err != nil {
			return err
		}
		return b.Put(key(id), v)
	})
	return &it, err
}

// Get returns item id.
func (o *Outbox) Get(id uint64) (*Item, error) {
	var it Item
	err := o.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(itemsBucket).Get(key(id))
		if v == nil {
			return fmt.Errorf("%w: %d", ErrNoItem, id)
		}
		return json.Unmarshal(v, &it)
	})
	return &it, err
}

// List returns every item, oldest first.
func (o *Outbox) List() ([]Item, error) {
	var out []Item
	err := o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(itemsBucket).ForEach(func(_, v []byte) error {
			var it Item
			if err := json.Unmarshal(v, &it); err != nil {
				return err
			}
			out = append(out, it)
			return nil
		})
	})
	return out, err
}

// Due returns, per peer, the queued item to deliver next: the highest
// priority, then the oldest, among those not waiting for a retry; a
// peer with an item in flight has none.
func (o *Outbox) Due(now time.Time) ([]Item, error) {
	all, err := o.List()
	if err != nil {
		return nil, err
	}
	busy := map[string]bool{}
	best := map[string]Item{}
	for _, it := range all {
		switch {
		case it.State == Sending:
			busy[it.Peer] = true
		case it.State != Queued:
		default:
			b, ok := best[it.Peer]
			if !ok || it.Priority > b.Priority || it.Priority == b.Priority && it.ID < b.ID {
				best[it.Peer] = it
			}
		}
	}
	var out []Item
	for p, it := range best {
		// The best item waits for its retry time; lower ones wait with
		// it, so that the peer's items keep their order.
		if !busy[p] && !it.NextTry.After(now) {
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Recover puts items a killed agent left in flight back in the queue.
func (o *Outbox) Recover() error {
	all, err := o.List()
	if err != nil {
		return err
	}
	for _, it := range all {
		if it.State == Sending {
			if _, err := o.Update(it.ID, func(it *Item) error { it.State = Queued; return nil }); err != nil {
				return err
			}
		}
	}
	return nil
}

// InFile is one file that arrived.
type InFile struct {
	Name string `json:"name"` // as placed, relative to Dir
	Size uint64 `json:"size"`
	Root string `json:"root"` // whole-file BLAKE3 root, hex
}

// Entry is one transfer that arrived, verified and placed.
type Entry struct {
	ID    uint64    `json:"id"`
	Time  time.Time `json:"time"`
	Peer  string    `json:"peer"`
	Via   string    `json:"via"` // recv, get or agent
	Dir   string    `json:"dir"`
	Files []InFile  `json:"files"` // the first of them, up to a bound
	// FileCount and Bytes count every file, listed or not.
	FileCount uint64   `json:"file_count"`
	Bytes     uint64   `json:"bytes"`
	Tags      []string `json:"tags,omitempty"`
	Note      string   `json:"note,omitempty"`
	// Key identifies the delivery, for example the sender's outbox item:
	// a delivery repeated after a crash updates its entry, never adds one.
	Key string `json:"-"`
}

// Inbox is the index of what arrived. recv, get and the agent all write
// to it, each opening it for one transaction at a time.
type Inbox struct{ Path string }

func (in Inbox) open(readOnly bool) (*bolt.DB, error) {
	if err := os.MkdirAll(filepath.Dir(in.Path), 0o700); err != nil {
		return nil, err
	}
	return bolt.Open(in.Path, 0o600, &bolt.Options{Timeout: 10 * time.Second, ReadOnly: readOnly})
}

// Add records e. An entry with the same Key is replaced, keeping its ID.
func (in Inbox) Add(e *Entry) error {
	db, err := in.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(inBucket)
		if err != nil {
			return err
		}
		keys, err := tx.CreateBucketIfNotExists(keysBucket)
		if err != nil {
			return err
		}
		if e.Key != "" {
			if old := keys.Get([]byte(e.Key)); old != nil {
				e.ID = binary.BigEndian.Uint64(old)
			}
		}
		if e.ID == 0 {
			if e.ID, err = b.NextSequence(); err != nil {
				return err
			}
		}
		if e.Key != "" {
			if err := keys.Put([]byte(e.Key), key(e.ID)); err != nil {
				return err
			}
		}
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(key(e.ID), v)
	})
}

// Filter selects inbox entries; zero fields select everything.
type Filter struct {
	Peer  string
	Tag   string
	Since time.Time
}

// List returns the entries f selects, oldest first.
func (in Inbox) List(f Filter) ([]Entry, error) {
	if _, err := os.Stat(in.Path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	db, err := in.open(true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var out []Entry
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(inBucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if f.Peer != "" && e.Peer != f.Peer || !f.Since.IsZero() && e.Time.Before(f.Since) || f.Tag != "" && !contains(e.Tags, f.Tag) {
				return nil
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
