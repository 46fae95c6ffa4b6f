package pair

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// TicketPrefix starts every ticket, so that it is told from a code, a
// peer ID or a file name at a glance.
const TicketPrefix = "dshare1"

const (
	ticketVersion  = 1
	maxTicketAddrs = 8
	checksumLen    = 4
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Ticket is all a sender needs to reach a receiver and prove it was
// invited: its peer ID and addresses, both as bytes, and a random secret.
type Ticket struct {
	Peer  []byte
	Addrs [][]byte
	Rand  [16]byte
}

// NewTicket returns a ticket for peer at addrs with a fresh secret.
// Addresses beyond the first few, or too long, are left out.
func NewTicket(peer []byte, addrs [][]byte) Ticket {
	t := Ticket{Peer: peer}
	_, _ = rand.Read(t.Rand[:])
	for _, a := range addrs {
		if len(t.Addrs) < maxTicketAddrs && len(a) < 256 {
			t.Addrs = append(t.Addrs, a)
		}
	}
	return t
}

// Secret returns the secret the ticket carries.
func (t Ticket) Secret() Secret { return fromRandom(t.Rand) }

// String encodes the ticket: the prefix, then base32 of the contents and
// a checksum, so that a damaged copy is caught at once.
func (t Ticket) String() string {
	var b bytes.Buffer
	b.WriteByte(ticketVersion)
	b.Write(t.Rand[:])
	b.WriteByte(byte(len(t.Peer)))
	b.Write(t.Peer)
	b.WriteByte(byte(len(t.Addrs)))
	for _, a := range t.Addrs {
		b.WriteByte(byte(len(a)))
		b.Write(a)
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:checksumLen])
	return TicketPrefix + b32.EncodeToString(b.Bytes())
}

// LooksLikeTicket reports whether s was meant as a ticket, well formed or
// not.
func LooksLikeTicket(s string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), TicketPrefix) && len(s) > len(TicketPrefix)+20
}

// ParseTicket decodes a ticket, refusing one whose checksum does not hold.
func ParseTicket(s string) (Ticket, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	body, ok := strings.CutPrefix(s, TicketPrefix)
	if !ok {
		return Ticket{}, fmt.Errorf("%w: it does not start with %s", ErrBadTicket, TicketPrefix)
	}
	raw, err := b32.DecodeString(body)
	// The last character may carry unused bits, which decoding ignores:
	// a ticket is taken only in the one spelling that encodes it.
	if err != nil || len(raw) < 1+16+1+1+checksumLen || b32.EncodeToString(raw) != body {
		return Ticket{}, fmt.Errorf("%w: it is damaged; copy it again", ErrBadTicket)
	}
	payload, check := raw[:len(raw)-checksumLen], raw[len(raw)-checksumLen:]
	if sum := sha256.Sum256(payload); !bytes.Equal(sum[:checksumLen], check) {
		return Ticket{}, fmt.Errorf("%w: its checksum does not match, so a character changed; copy it again", ErrBadTicket)
	}
	if payload[0] != ticketVersion {
		return Ticket{}, fmt.Errorf("%w: version %d is not known to this dshare; update it", ErrBadTicket, payload[0])
	}
	r := bytes.NewReader(payload[1:])
	var t Ticket
	read := func(n int) ([]byte, bool) {
		b := make([]byte, n)
		k, _ := r.Read(b)
		return b, k == n
	}
	rnd, ok1 := read(16)
	copy(t.Rand[:], rnd)
	n, err1 := r.ReadByte()
	peer, ok2 := read(int(n))
	t.Peer = peer
	count, err2 := r.ReadByte()
	if !ok1 || !ok2 || err1 != nil || err2 != nil || count > maxTicketAddrs {
		return Ticket{}, fmt.Errorf("%w: its contents are malformed", ErrBadTicket)
	}
	for range count {
		l, err := r.ReadByte()
		a, ok := read(int(l))
		if err != nil || !ok {
			return Ticket{}, fmt.Errorf("%w: its contents are malformed", ErrBadTicket)
		}
		t.Addrs = append(t.Addrs, a)
	}
	if r.Len() != 0 {
		return Ticket{}, fmt.Errorf("%w: its contents are malformed", ErrBadTicket)
	}
	return t, nil
}
