package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Type identifies the message carried by a frame. Values are never reused.
type Type uint8

const (
	TypeOffer    Type = 1
	TypeAccept   Type = 2
	TypeReject   Type = 3
	TypeGet      Type = 4
	TypeStart    Type = 5
	TypeData     Type = 6
	TypeSleep    Type = 7
	TypeProgress Type = 8
	TypeDone     Type = 9
	TypeError    Type = 10
	TypePair     Type = 11
)

var typeNames = map[Type]string{
	TypeOffer: "offer", TypeAccept: "accept", TypeReject: "reject", TypeGet: "get",
	TypeStart: "start", TypeData: "data", TypeSleep: "sleep", TypeProgress: "progress",
	TypeDone: "done", TypeError: "error", TypePair: "pair",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Message is implemented by every frame body.
type Message interface {
	Type() Type
}

// HeaderSize is the size of a frame header: type byte and uint32 length.
const HeaderSize = 5

// AppendFrame appends the framed encoding of m to b.
func AppendFrame(b []byte, m Message) ([]byte, error) {
	body, err := marshal(m)
	if err != nil {
		return b, fmt.Errorf("wire: encode %v: %w", m.Type(), err)
	}
	if len(body) > MaxBodySize {
		return b, fmt.Errorf("wire: encode %v: %w", m.Type(), ErrFrameTooLarge)
	}
	b = append(b, byte(m.Type()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...), nil
}

// WriteMsg writes m as one frame with a single Write call.
func WriteMsg(w io.Writer, m Message) error {
	b, err := AppendFrame(make([]byte, 0, 128), m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// WriteData writes a Data frame followed by its payload. d.Length is set
// from payload.
func WriteData(w io.Writer, d *Data, payload []byte) error {
	if len(payload) > MaxChunkSize {
		return fmt.Errorf("wire: data: %w", ErrFrameTooLarge)
	}
	d.Length = uint32(len(payload))
	if err := WriteMsg(w, d); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// Reader reads frames from a stream. After ReadMsg returns a *Data, the
// caller must consume exactly Data.Length payload bytes through Payload
// before reading the next frame.
type Reader struct {
	br      *bufio.Reader
	body    []byte
	pending int64 // payload bytes of the last Data frame not yet consumed

	// Grow, if set, is asked before the body buffer grows by n bytes; an
	// error stops the read. It lets the owner count what peers make it
	// hold against a budget.
	Grow func(n int) error
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, readBuffer)}
}

// readBuffer is small on purpose: a payload and a large body are read
// straight into their own buffers, and what the buffer takes in beyond a
// frame's header is copied twice. At 64 KiB that was a quarter of every
// 256 KiB chunk.
const readBuffer = 4 << 10

// ReadMsg reads and decodes the next frame. A stream that ends cleanly
// between frames gives io.EOF; one that ends inside a frame gives
// io.ErrUnexpectedEOF.
func (r *Reader) ReadMsg() (Message, error) {
	if r.pending > 0 {
		if _, err := io.CopyN(io.Discard, r.br, r.pending); err != nil {
			return nil, noEOF(err)
		}
		r.pending = 0
	}
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r.br, hdr[:]); err != nil {
		return nil, err
	}
	t := Type(hdr[0])
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxBodySize {
		return nil, fmt.Errorf("%w: %v frame of %d bytes", ErrFrameTooLarge, t, n)
	}
	body, err := r.readBody(int(n))
	if err != nil {
		return nil, err
	}
	m, err := Decode(t, body)
	if err != nil {
		return nil, err
	}
	if d, ok := m.(*Data); ok {
		r.pending = int64(d.Length)
	}
	return m, nil
}

// bodyStep is the first allocation for a body that does not fit the
// current buffer.
const bodyStep = 4 << 10

// readBody reads an n-byte frame body into r.body. The length in the header
// is the peer's claim, not data: the buffer grows, doubling, only once the
// bytes already read have filled it, so a peer that announces a large body
// and stalls pins about twice what it sent rather than MaxBodySize. The
// grown buffer is kept, so later frames up to its size read in place.
func (r *Reader) readBody(n int) ([]byte, error) {
	buf, got := r.body[:cap(r.body)], 0
	for got < n {
		if got == len(buf) {
			size := min(n, max(2*len(buf), bodyStep))
			if r.Grow != nil {
				if err := r.Grow(size - len(buf)); err != nil {
					return nil, err
				}
			}
			nb := make([]byte, size)
			copy(nb, buf[:got])
			buf, r.body = nb, nb
		}
		k, err := io.ReadFull(r.br, buf[got:min(n, len(buf))])
		got += k
		if err != nil {
			return nil, noEOF(err)
		}
	}
	return buf[:n], nil
}

// Payload reads the payload of the last Data frame into p, which must be
// exactly Data.Length bytes long.
func (r *Reader) Payload(p []byte) error {
	if int64(len(p)) != r.pending {
		return fmt.Errorf("wire: payload buffer of %d bytes for %d pending", len(p), r.pending)
	}
	if _, err := io.ReadFull(r.br, p); err != nil {
		return noEOF(err)
	}
	r.pending = 0
	return nil
}

// PayloadSteps is Payload read step bytes at a time, calling filled with
// how much of p holds payload after each step: the caller can work on the
// bytes while they are in the CPU's cache.
func (r *Reader) PayloadSteps(p []byte, step int, filled func(n int)) error {
	if int64(len(p)) != r.pending {
		return fmt.Errorf("wire: payload buffer of %d bytes for %d pending", len(p), r.pending)
	}
	for n := 0; n < len(p); {
		k, err := io.ReadFull(r.br, p[n:min(n+step, len(p))])
		n += k
		r.pending -= int64(k)
		if err != nil {
			return noEOF(err)
		}
		filled(n)
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Decode decodes a frame body of type t.
func Decode(t Type, body []byte) (Message, error) {
	var m Message
	switch t {
	case TypeOffer:
		m = new(Offer)
	case TypeAccept:
		m = new(Accept)
	case TypeReject:
		m = new(Reject)
	case TypeGet:
		m = new(Get)
	case TypeStart:
		m = new(Start)
	case TypeData:
		m = new(Data)
	case TypeSleep:
		m = new(Sleep)
	case TypeProgress:
		m = new(Progress)
	case TypeDone:
		m = new(Done)
	case TypeError:
		m = new(Error)
	case TypePair:
		m = new(Pair)
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnknownType, t)
	}
	if err := unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%v: %w", t, err)
	}
	if v, ok := m.(interface{ validate() error }); ok {
		if err := v.validate(); err != nil {
			return nil, fmt.Errorf("%v: %w", t, err)
		}
	}
	return m, nil
}
