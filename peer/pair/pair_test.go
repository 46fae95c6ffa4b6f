package pair

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestCodeRoundTrip(t *testing.T) {
	code, s := NewCode()
	if n := len(strings.Split(code, "-")); n != CodeWords {
		t.Fatalf("code %q has %d words", code, n)
	}
	for _, typed := range []string{code, strings.ToUpper(code), " " + strings.ReplaceAll(code, "-", " ") + " "} {
		got, err := FromCode(typed)
		if err != nil || got != s {
			t.Fatalf("FromCode(%q): %v, secret differs: %v", typed, err, got != s)
		}
	}
	// Four letters identify a BIP-39 word.
	short := strings.Join(func() []string {
		var out []string
		for _, w := range strings.Split(code, "-") {
			out = append(out, w[:min(4, len(w))])
		}
		return out
	}(), "-")
	if c, err := NormalizeCode(short); err != nil || c != code {
		t.Fatalf("NormalizeCode(%q) = %q, %v; want %q", short, c, err, code)
	}
	if _, err := NormalizeCode("abandon-ability-able-xyzzy"); !errors.Is(err, ErrBadCode) || !strings.Contains(err.Error(), "xyzzy") {
		t.Fatalf("a word not in the list: %v", err)
	}
	if _, err := NormalizeCode("abandon-ability-able"); !errors.Is(err, ErrBadCode) {
		t.Fatalf("three words: %v", err)
	}
	other, _ := FromCode("abandon-ability-able-about")
	if other == s && code != "abandon-ability-able-about" {
		t.Fatal("two codes give one secret")
	}
}

func TestTicketRoundTripAndTypos(t *testing.T) {
	tk := NewTicket([]byte("peer-id-bytes"), [][]byte{[]byte("addr-one"), []byte("addr-two")})
	s := tk.String()
	if !strings.HasPrefix(s, TicketPrefix) || !LooksLikeTicket(s) {
		t.Fatalf("ticket %q", s)
	}
	back, err := ParseTicket(strings.ToUpper(s))
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Peer) != "peer-id-bytes" || len(back.Addrs) != 2 || back.Rand != tk.Rand || back.Secret() != tk.Secret() {
		t.Fatalf("round trip: %+v", back)
	}
	// Every one-character change after the prefix is caught.
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	for i := len(TicketPrefix); i < len(s); i++ {
		c := alphabet[(strings.IndexByte(alphabet, s[i])+1)%len(alphabet)]
		typo := s[:i] + string(c) + s[i+1:]
		if _, err := ParseTicket(typo); !errors.Is(err, ErrBadTicket) {
			t.Fatalf("a typo at %d was not caught: %v", i, err)
		}
	}
	if _, err := ParseTicket(s[:len(s)-1]); !errors.Is(err, ErrBadTicket) {
		t.Fatal("a truncated ticket was accepted")
	}
}

// pipe runs the sender's Prove against h.Serve over an in-memory stream.
func pipe(t *testing.T, h *Host, s Secret, sender, receiver string) (sw, rw string, serr, rerr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		rw, rerr = h.Serve(ctx, b, receiver, sender)
		b.Close()
	}()
	sw, serr = Prove(ctx, a, s, sender, receiver)
	a.Close()
	<-done
	return
}

func TestPairing(t *testing.T) {
	code, s := NewCode()
	h := NewHost()
	h.Add(s, time.Minute)

	sw, rw, serr, rerr := pipe(t, h, s, "alice", "bob")
	if serr != nil || rerr != nil || sw != rw || len(strings.Fields(sw)) != 3 {
		t.Fatalf("right code %s: sender %q %v, receiver %q %v", code, sw, serr, rw, rerr)
	}
	if w, ok := h.Paired("alice"); !ok || w != sw {
		t.Fatalf("alice is not recorded as paired: %q %v", w, ok)
	}
	if s.Words("alice", "bob") == s.Words("mallory", "bob") {
		t.Fatal("the words do not depend on the sender")
	}

	// A wrong key under the right tag: both sides refuse, nobody paired.
	wrong := s
	wrong.Key[0] ^= 1
	_, _, serr, rerr = pipe(t, h, wrong, "mallory", "bob")
	if !errors.Is(serr, ErrWrongCode) || !errors.Is(rerr, ErrWrongCode) {
		t.Fatalf("wrong code: sender %v, receiver %v", serr, rerr)
	}
	if _, ok := h.Paired("mallory"); ok {
		t.Fatal("a wrong code paired")
	}

	// An unknown tag is "no such code", and costs no attempt.
	_, other := NewCode()
	if _, _, serr, _ = pipe(t, h, other, "carol", "bob"); !errors.Is(serr, ErrNoCode) {
		t.Fatalf("unknown code: %v", serr)
	}
}

func TestPairingLimits(t *testing.T) {
	_, s := NewCode()
	h := NewHost()
	h.Add(s, time.Minute)
	wrong := s
	wrong.Key[0] ^= 1
	// One peer: cut off after MaxWrongPerPeer.
	for i := range MaxWrongPerPeer {
		if _, _, serr, _ := pipe(t, h, wrong, "mallory", "bob"); !errors.Is(serr, ErrWrongCode) {
			t.Fatalf("attempt %d: %v", i, serr)
		}
	}
	if _, _, serr, _ := pipe(t, h, s, "mallory", "bob"); !errors.Is(serr, ErrBurned) {
		t.Fatalf("a peer past its wrong attempts, with the right code: %v, want refused", serr)
	}
	// Many peers: the code is dropped after MaxWrongPerCode in all.
	for i := MaxWrongPerPeer; i < MaxWrongPerCode; i++ {
		_, _, serr, _ := pipe(t, h, wrong, fmt.Sprintf("sybil%d", i), "bob")
		if i < MaxWrongPerCode-1 && !errors.Is(serr, ErrWrongCode) || i == MaxWrongPerCode-1 && !errors.Is(serr, ErrBurned) {
			t.Fatalf("attempt %d: %v", i, serr)
		}
	}
	if _, _, serr, _ := pipe(t, h, s, "alice", "bob"); !errors.Is(serr, ErrNoCode) {
		t.Fatalf("the right code after the code was dropped: %v, want no such code", serr)
	}

	// A code lives only its time.
	h2 := NewHost()
	now := time.Now()
	h2.now = func() time.Time { return now }
	h2.Add(s, time.Minute)
	now = now.Add(2 * time.Minute)
	if _, _, serr, _ := pipe(t, h2, s, "alice", "bob"); !errors.Is(serr, ErrNoCode) {
		t.Fatalf("an expired code: %v", serr)
	}
}

// A peer that answers to the tag (which is no secret) without the key is
// not taken for the receiver.
func TestPairingImpostorReceiver(t *testing.T) {
	_, s := NewCode()
	fake := s
	fake.Key[5] ^= 0x80
	h := NewHost()
	h.Add(fake, time.Minute) // same tag, another key
	_, _, serr, _ := pipe(t, h, s, "alice", "impostor")
	if !errors.Is(serr, ErrWrongCode) {
		t.Fatalf("sender paired with an impostor: %v", serr)
	}
}
