package wire

import "fmt"

// Offer proposes a put: the sender's manifest. A manifest too large for one
// frame is split into parts numbered from 0; all but the last set More.
// Files and Bytes, sent in part 0, give the whole manifest's totals so the
// receiver can refuse before reading every part. Next free key: 9.
type Offer struct {
	ReqID     uint64  `cbor:"1,keyasint"`
	Part      uint32  `cbor:"2,keyasint,omitempty"`
	More      bool    `cbor:"3,keyasint,omitempty"`
	ChunkSize uint32  `cbor:"4,keyasint,omitempty"`
	Files     uint64  `cbor:"5,keyasint,omitempty"` // entries in the whole manifest
	Bytes     uint64  `cbor:"6,keyasint,omitempty"` // sum of file sizes
	Entries   []Entry `cbor:"7,keyasint"`
	Name      string  `cbor:"8,keyasint,omitempty"` // sender's display name, informational
	// For the receiver's inbox and its user, first part only: labels, a
	// note, whether to notify ("notify") or not, and the sender's outbox
	// item, so that a delivery repeated after a crash is known as one.
	Tags     []string `cbor:"9,keyasint,omitempty"`
	Note     string   `cbor:"10,keyasint,omitempty"`
	Announce string   `cbor:"11,keyasint,omitempty"`
	Item     uint64   `cbor:"12,keyasint,omitempty"`
}

// Bounds of an offer's labels.
const (
	MaxTags     = 16
	MaxTagLen   = 64
	MaxNoteLen  = 1024
	maxAnnounce = 16
	// offerMeta is the room SplitOffer leaves in the first part for them.
	offerMeta = MaxTags*(MaxTagLen+9) + MaxNoteLen + maxAnnounce + 64
)

func (*Offer) Type() Type { return TypeOffer }

func (o *Offer) validate() error {
	if o.ChunkSize > MaxChunkSize {
		return fmt.Errorf("%w: chunk size %d", ErrMalformed, o.ChunkSize)
	}
	if len(o.Tags) > MaxTags || len(o.Note) > MaxNoteLen || len(o.Announce) > maxAnnounce {
		return fmt.Errorf("%w: %d tags, a note of %d bytes", ErrMalformed, len(o.Tags), len(o.Note))
	}
	for _, t := range o.Tags {
		if len(t) > MaxTagLen {
			return fmt.Errorf("%w: a tag of %d bytes", ErrMalformed, len(t))
		}
	}
	return nil
}

// entryOverhead bounds the CBOR size of an Entry beyond its path.
const entryOverhead = 64

// SplitOffer splits a manifest into Offer parts that each fit in a frame.
func SplitOffer(reqID uint64, chunkSize uint32, entries []Entry) []*Offer {
	var total uint64
	for _, e := range entries {
		total += e.Size
	}
	first := &Offer{ReqID: reqID, ChunkSize: chunkSize, Files: uint64(len(entries)), Bytes: total}
	parts := []*Offer{first}
	cur, size := first, 256+offerMeta
	for _, e := range entries {
		n := len(e.Path) + entryOverhead
		if size+n > MaxBodySize || len(cur.Entries) == maxArrayLength {
			cur.More = true
			cur = &Offer{ReqID: reqID, Part: uint32(len(parts))}
			parts = append(parts, cur)
			size = 256
		}
		cur.Entries = append(cur.Entries, e)
		size += n
	}
	return parts
}
