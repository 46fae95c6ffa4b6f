package discovery

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newID(t *testing.T) peer.ID {
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRendezvous(t *testing.T) {
	a, b := newID(t), newID(t)
	if !rendezvous(a).Equals(rendezvous(a)) {
		t.Fatal("a peer's rendezvous key must be stable")
	}
	if rendezvous(a).Equals(rendezvous(b)) {
		t.Fatal("two peers share a rendezvous key")
	}
}

func TestParseAddrs(t *testing.T) {
	id := newID(t)
	infos, err := ParseAddrs([]string{
		"/ip4/7.0.0.1/udp/4747/quic-v1/p2p/" + id.String(),
		"/ip4/7.0.0.1/tcp/4747/p2p/" + id.String(),
	})
	if err != nil || len(infos) != 1 || infos[0].ID != id || len(infos[0].Addrs) != 2 {
		t.Fatalf("ParseAddrs = %v, %v; want one peer with two addresses", infos, err)
	}
	for _, bad := range []string{"/ip4/7.0.0.1/udp/4747/quic-v1", "not an address"} {
		if _, err := ParseAddrs([]string{bad}); err == nil {
			t.Errorf("ParseAddrs(%q) accepted", bad)
		}
	}
}
