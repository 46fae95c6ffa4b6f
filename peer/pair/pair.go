// Package pair lets a sender and a receiver that share a short code or a
// ticket prove it to each other, bound to both peer IDs, before any
// offer is made. It knows nothing of libp2p: peers are their IDs' bytes,
// and the protocol runs over any stream.
//
// A code is four words from the BIP-39 English list (44 bits). What is
// derived from it passes through Argon2id, memory-hard, so that the tag a
// receiver answers to (and may publish in the DHT) gives no cheap way to
// guess the code offline, and a receiver stops answering a code after a
// few minutes. A ticket carries a random 128-bit secret instead, with the
// receiver's peer ID and addresses and a checksum.
package pair

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/tyler-smith/go-bip39/wordlists"
	"golang.org/x/crypto/argon2"
)

// Errors a pairing ends with.
var (
	ErrBadCode   = errors.New("not a dshare code")
	ErrBadTicket = errors.New("not a dshare ticket")
	ErrWrongCode = errors.New("the code does not match")
	ErrNoCode    = errors.New("no such code here")
	ErrBurned    = errors.New("the code was tried too many times")
)

// CodeWords is the number of words in a code.
const CodeWords = 4

var words = wordlists.English

// index maps each word, and each unambiguous prefix of four letters or
// more, to its position: BIP-39 words differ in their first four letters,
// so "abso" is "absorb", and a word cut short or mistyped after its
// fourth letter is still understood.
var index = func() map[string]int {
	m := make(map[string]int, len(words)*3)
	for i, w := range words {
		for n := 4; n <= len(w); n++ {
			m[w[:n]] = i
		}
		m[w] = i
	}
	return m
}()

// Secret is what both sides of a pairing know. Tag names it, so that a
// receiver can tell which of its codes a sender means, and may be shown
// to anyone; Key proves it, and is never sent.
type Secret struct {
	Tag [16]byte
	Key [32]byte
}

// NewCode returns a fresh random code and its secret.
func NewCode() (string, Secret) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	n := binary.BigEndian.Uint64(b[:])
	parts := make([]string, CodeWords)
	for i := range parts {
		parts[i] = words[n%uint64(len(words))]
		n /= uint64(len(words))
	}
	code := strings.Join(parts, "-")
	s, _ := FromCode(code)
	return code, s
}

// NormalizeCode returns code in its canonical form, "word-word-word-word",
// or an error naming the first word that is not a code word.
func NormalizeCode(code string) (string, error) {
	fields := strings.FieldsFunc(strings.ToLower(strings.TrimSpace(code)), func(r rune) bool {
		return r == '-' || r == ' ' || r == '.' || r == '_'
	})
	if len(fields) != CodeWords {
		return "", fmt.Errorf("%w: a code is %d words joined by dashes", ErrBadCode, CodeWords)
	}
	for i, f := range fields {
		j, ok := index[f]
		if !ok {
			return "", fmt.Errorf("%w: %q is not one of its words; check for a typo", ErrBadCode, f)
		}
		fields[i] = words[j]
	}
	return strings.Join(fields, "-"), nil
}

// LooksLikeCode reports whether s is a well-formed code.
func LooksLikeCode(s string) bool {
	_, err := NormalizeCode(s)
	return err == nil
}

// Argon2id parameters: about 0.1 s and 64 MiB per guess, once per code
// on each side.
const (
	kdfTime    = 2
	kdfMemory  = 64 << 10 // KiB
	kdfThreads = 1
)

// FromCode derives the secret of a code.
func FromCode(code string) (Secret, error) {
	c, err := NormalizeCode(code)
	if err != nil {
		return Secret{}, err
	}
	out := argon2.IDKey([]byte(c), []byte("dshare pairing code v1"), kdfTime, kdfMemory, kdfThreads, 48)
	var s Secret
	copy(s.Tag[:], out[:16])
	copy(s.Key[:], out[16:])
	return s, nil
}

// fromRandom derives the secret of a ticket's random bytes.
func fromRandom(r [16]byte) Secret {
	var s Secret
	copy(s.Tag[:], mac(r[:], "dshare ticket tag v1"))
	copy(s.Key[:], mac(r[:], "dshare ticket key v1"))
	return s
}

// mac is HMAC-SHA256 of the parts, each length-prefixed so that no two
// sequences of parts give the same input.
func mac(key []byte, parts ...string) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// proof is what role proves: knowledge of the key, for this pair of peers
// and these nonces.
func (s Secret) proof(role string, sender, receiver string, nr, ns []byte) []byte {
	return mac(s.Key[:], "dshare pair proof v1", role, sender, receiver, string(s.Tag[:]), string(nr), string(ns))
}

// Words returns the verification words both sides show: derived from the
// secret and both peer IDs, so that they match only if both paired with
// each other.
func (s Secret) Words(sender, receiver string) string {
	m := mac(s.Key[:], "dshare pair words v1", sender, receiver)
	a := binary.BigEndian.Uint16(m[0:2]) % uint16(len(words))
	b := binary.BigEndian.Uint16(m[2:4]) % uint16(len(words))
	c := binary.BigEndian.Uint16(m[4:6]) % uint16(len(words))
	return words[a] + " " + words[b] + " " + words[c]
}
