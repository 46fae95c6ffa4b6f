package peer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newID(t *testing.T) peer.ID {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTrusted(t *testing.T) {
	home := t.TempDir()
	if m, err := LoadTrusted(home); err != nil || len(m) != 0 {
		t.Fatalf("missing file: %v %v", m, err)
	}
	a, b := newID(t), newID(t)
	if err := AddTrusted(home, a, "laptop\n"+b.String()); err != nil {
		t.Fatal(err)
	}
	m, err := LoadTrusted(home)
	if err != nil {
		t.Fatal(err)
	}
	if !m[a] || m[b] || len(m) != 1 {
		t.Fatalf("trusted = %v; a note must not add a peer", m)
	}
	if err := os.WriteFile(filepath.Join(home, TrustedFile), []byte("nonsense\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTrusted(home); err == nil {
		t.Fatal("a malformed line must be an error")
	}
}
