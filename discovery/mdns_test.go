package discovery

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestParseEntry(t *testing.T) {
	_, pub, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPublicKey(pub)
	txt := []string{
		"dnsaddr=/ip4/10.0.0.2/udp/4747/quic-v1/p2p/" + id.String(),
		"dnsaddr=/ip6/fe80::1/tcp/4747/p2p/" + id.String(),
		"dnsaddr=not a multiaddr",
		"other=record",
	}
	infos := parseEntry(txt)
	if len(infos) != 1 || infos[0].ID != id || len(infos[0].Addrs) != 2 {
		t.Fatalf("got %v", infos)
	}
	if parseEntry([]string{"dnsaddr=/ip4/1.2.3.4/tcp/1"}) != nil {
		t.Fatal("an address without a peer ID must be ignored")
	}
}
