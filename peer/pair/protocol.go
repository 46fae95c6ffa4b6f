package pair

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dshare/dshare/wire"
)

// Stream is what a pairing runs over: one stream of wire frames.
type Stream interface {
	io.Reader
	io.Writer
	SetDeadline(time.Time) error
}

// Timeout bounds a whole pairing exchange.
const Timeout = 10 * time.Second

const nonceLen = 32

// Limits on wrong proofs: per code, after which the code is dropped, and
// per peer, after which the peer is not answered for any code.
const (
	MaxWrongPerCode = 5
	MaxWrongPerPeer = 3
)

func nonce() []byte {
	b := make([]byte, nonceLen)
	_, _ = rand.Read(b)
	return b
}

func readPair(rd *wire.Reader) (*wire.Pair, error) {
	m, err := rd.ReadMsg()
	if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *wire.Pair:
		return m, nil
	case *wire.Error:
		return nil, m.Err()
	}
	return nil, fmt.Errorf("%w: %v during pairing", wire.ErrProtocol, m.Type())
}

// Prove runs the sender's side with the receiver remote: it names s by
// its tag, proves that it knows s, and checks that the receiver does too.
// It returns the verification words both sides show.
func Prove(ctx context.Context, st Stream, s Secret, self, remote string) (string, error) {
	deadline := time.Now().Add(Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = st.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Now()) })
	defer stop()
	rd := wire.NewReader(st)
	ns := nonce()
	if err := wire.WriteMsg(st, &wire.Pair{Tag: s.Tag[:], Nonce: ns}); err != nil {
		return "", err
	}
	ch, err := readPair(rd)
	switch {
	case errors.Is(err, wire.ErrNotFound):
		return "", ErrNoCode
	case errors.Is(err, wire.ErrLimit):
		return "", ErrBurned
	case err != nil:
		return "", err
	case len(ch.Nonce) != nonceLen:
		return "", fmt.Errorf("%w: a pairing nonce of %d bytes", wire.ErrProtocol, len(ch.Nonce))
	}
	if err := wire.WriteMsg(st, &wire.Pair{MAC: s.proof("sender", self, remote, ch.Nonce, ns)}); err != nil {
		return "", err
	}
	back, err := readPair(rd)
	switch {
	case errors.Is(err, wire.ErrUnauthorized):
		return "", ErrWrongCode
	case errors.Is(err, wire.ErrLimit):
		return "", ErrBurned
	case err != nil:
		return "", err
	}
	if !hmac.Equal(back.MAC, s.proof("receiver", self, remote, ch.Nonce, ns)) {
		// It answered to the tag, which is no secret, but does not
		// know the key: not the receiver the code was given by.
		return "", fmt.Errorf("%w: the peer that answered does not know it", ErrWrongCode)
	}
	return s.Words(self, remote), nil
}

// Host is the receiver's side: the secrets it answers to, the peers that
// proved one, and the count of wrong proofs.
type Host struct {
	mu      sync.Mutex
	secrets map[[16]byte]*entry
	wrong   map[string]int    // by peer
	paired  map[string]string // peer -> verification words
	now     func() time.Time
}

type entry struct {
	s       Secret
	expires time.Time // zero: never
	wrong   int
}

// NewHost returns a Host that answers to no secret yet.
func NewHost() *Host {
	return &Host{secrets: map[[16]byte]*entry{}, wrong: map[string]int{}, paired: map[string]string{}, now: time.Now}
}

// Add makes h answer to s for ttl (0: until removed).
func (h *Host) Add(s Secret, ttl time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := &entry{s: s}
	if ttl > 0 {
		e.expires = h.now().Add(ttl)
	}
	h.secrets[s.Tag] = e
}

// Remove makes h stop answering to s.
func (h *Host) Remove(s Secret) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.secrets, s.Tag)
}

// Paired returns the verification words of a peer that proved a secret.
func (h *Host) Paired(peer string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.paired[peer]
	return w, ok
}

// lookup returns the live secret named tag, or why there is none.
func (h *Host) lookup(tag []byte, remote string) (*entry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wrong[remote] >= MaxWrongPerPeer {
		return nil, fmt.Errorf("%w: too many wrong codes from this peer", wire.ErrLimit)
	}
	var t [16]byte
	if len(tag) != len(t) {
		return nil, fmt.Errorf("%w: %v", wire.ErrNotFound, ErrNoCode)
	}
	copy(t[:], tag)
	e := h.secrets[t]
	if e == nil || !e.expires.IsZero() && h.now().After(e.expires) {
		delete(h.secrets, t)
		return nil, fmt.Errorf("%w: %v", wire.ErrNotFound, ErrNoCode)
	}
	return e, nil
}

// Serve runs the receiver's side for the peer remote. It returns the
// verification words once remote has proved a secret h answers to.
func (h *Host) Serve(ctx context.Context, st Stream, self, remote string) (string, error) {
	_ = st.SetDeadline(time.Now().Add(Timeout))
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Now()) })
	defer stop()
	rd := wire.NewReader(st)
	refuse := func(err error) (string, error) {
		_ = wire.WriteMsg(st, wire.ErrorFor(err))
		return "", err
	}
	hello, err := readPair(rd)
	if err != nil {
		return "", err
	}
	if len(hello.Nonce) != nonceLen {
		return refuse(fmt.Errorf("%w: a pairing nonce of %d bytes", wire.ErrProtocol, len(hello.Nonce)))
	}
	e, err := h.lookup(hello.Tag, remote)
	if err != nil {
		return refuse(err)
	}
	nr := nonce()
	if err := wire.WriteMsg(st, &wire.Pair{Nonce: nr}); err != nil {
		return "", err
	}
	proof, err := readPair(rd)
	if err != nil {
		return "", err
	}
	if !hmac.Equal(proof.MAC, e.s.proof("sender", remote, self, nr, hello.Nonce)) {
		h.mu.Lock()
		h.wrong[remote]++
		e.wrong++
		burned := e.wrong >= MaxWrongPerCode
		if burned {
			delete(h.secrets, e.s.Tag)
		}
		h.mu.Unlock()
		if burned {
			return refuse(fmt.Errorf("%w: %w", wire.ErrLimit, ErrBurned))
		}
		return refuse(fmt.Errorf("%w: %w", wire.ErrUnauthorized, ErrWrongCode))
	}
	if err := wire.WriteMsg(st, &wire.Pair{MAC: e.s.proof("receiver", remote, self, nr, hello.Nonce)}); err != nil {
		return "", err
	}
	words := e.s.Words(remote, self)
	h.mu.Lock()
	h.paired[remote] = words
	h.mu.Unlock()
	return words, nil
}
