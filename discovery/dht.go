package discovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

// ErrNotFound is returned when no lookup finds the peer.
var ErrNotFound = errors.New("peer not found")

// ErrUnreachable says that no bootstrap peer answered: the DHT cannot be
// joined from here, as on a network with no internet.
var ErrUnreachable = errors.New("the DHT cannot be reached")

// DefaultBootstrap returns the public libp2p/IPFS bootstrap peers.
func DefaultBootstrap() []peer.AddrInfo { return dht.GetDefaultBootstrapPeerAddrInfos() }

// DHT is a Kademlia DHT node: a client on senders and receivers, a
// server on a relay.
type DHT struct {
	h         host.Host
	d         *dht.IpfsDHT
	bootstrap []peer.AddrInfo
}

// StartDHT joins the DHT through the bootstrap peers. server makes this
// node answer queries and store records, as a relay does.
func StartDHT(ctx context.Context, h host.Host, bootstrap []peer.AddrInfo, server bool) (*DHT, error) {
	mode := dht.ModeClient
	if server {
		mode = dht.ModeServer
	}
	d, err := dht.New(h, dht.Mode(mode), dht.BootstrapPeers(bootstrap...))
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	n := &DHT{h: h, d: d, bootstrap: bootstrap}
	if n.connectBootstrap(ctx) == 0 && len(bootstrap) > 0 && !server {
		d.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: none of its %d bootstrap peers answered", ErrUnreachable, len(bootstrap))
	}
	if err := d.Bootstrap(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("bootstrap DHT: %w", err)
	}
	if len(bootstrap) > 0 && !server {
		n.waitRoutable(ctx)
	}
	return n, nil
}

// waitRoutable waits, up to a bound, for a DHT server in the routing
// table: a lookup started before that fails at once. Peers enter the table
// only after identify has shown they speak the DHT protocol.
func (n *DHT) waitRoutable(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for n.d.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// connectBootstrap dials the bootstrap peers at once and in parallel, so
// that the first lookup does not wait for the DHT's own schedule, and
// returns how many answered.
func (n *DHT) connectBootstrap(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var ok atomic.Int32
	for _, p := range n.bootstrap {
		if p.ID == n.h.ID() {
			ok.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n.h.Connect(ctx, p) == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// Close leaves the DHT.
func (n *DHT) Close() error { return n.d.Close() }

// rendezvous is the record a receiver provides so that senders can find
// its addresses even when no DHT server near its own ID is connected to
// it, as happens behind a NAT.
func rendezvous(id peer.ID) cid.Cid {
	sum, _ := mh.Sum([]byte("/dshare/recv/"+id.String()), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, sum)
}

// Advertise publishes h's addresses under its rendezvous record until
// ctx ends, again whenever they change (a relay reservation adds some).
func (n *DHT) Advertise(ctx context.Context) {
	sub, err := n.h.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		return
	}
	go func() {
		defer sub.Close()
		provide := func() {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			_ = n.d.Provide(pctx, rendezvous(n.h.ID()), true)
			cancel()
		}
		provide()
		refresh := time.NewTicker(10 * time.Minute)
		defer refresh.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sub.Out():
				provide()
			case <-refresh.C:
				provide()
			}
		}
	}()
}

// Find looks id up both ways at once, by a DHT peer lookup and by its
// rendezvous record, and returns the first answer with addresses.
func (n *DHT) Find(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := make(chan peer.AddrInfo, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if ai, err := n.d.FindPeer(ctx, id); err == nil && len(ai.Addrs) > 0 {
			found <- ai
		}
	}()
	go func() {
		defer wg.Done()
		for ai := range n.d.FindProvidersAsync(ctx, rendezvous(id), 4) {
			if ai.ID == id && len(ai.Addrs) > 0 {
				found <- ai
				return
			}
		}
	}()
	go func() { wg.Wait(); close(found) }()
	select {
	case ai, ok := <-found:
		if ok {
			return ai, nil
		}
		return peer.AddrInfo{}, fmt.Errorf("%w: %s is in neither the DHT nor its records", ErrNotFound, id)
	case <-ctx.Done():
		return peer.AddrInfo{}, ctx.Err()
	}
}

// tagRecord is the record under which a receiver answering to a pairing
// tag can be found. The tag comes out of a memory-hard KDF of the code,
// so the record gives no cheap way to guess the code.
func tagRecord(tag []byte) cid.Cid {
	sum, _ := mh.Sum(append([]byte("/dshare/pair/"), tag...), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, sum)
}

// AdvertiseTag publishes h under tag until ctx ends, again whenever its
// addresses change, so that a sender holding the code finds it.
func (n *DHT) AdvertiseTag(ctx context.Context, tag []byte) {
	sub, err := n.h.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		return
	}
	c := tagRecord(tag)
	go func() {
		defer sub.Close()
		for {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			_ = n.d.Provide(pctx, c, true)
			cancel()
			select {
			case <-ctx.Done():
				return
			case <-sub.Out():
			}
		}
	}()
}

// FindTag sends the peers advertised under tag to found until ctx ends or
// the lookup is over.
func (n *DHT) FindTag(ctx context.Context, tag []byte, found func(peer.AddrInfo)) {
	for ai := range n.d.FindProvidersAsync(ctx, tagRecord(tag), 8) {
		if ai.ID != n.h.ID() {
			found(ai)
		}
	}
}

// RelayCandidates feeds autorelay with DHT servers to reserve slots on.
func (n *DHT) RelayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	go func() {
		defer close(out)
		for _, id := range n.d.RoutingTable().ListPeers() {
			if num == 0 {
				return
			}
			ai := n.h.Peerstore().PeerInfo(id)
			if len(ai.Addrs) == 0 {
				continue
			}
			select {
			case out <- ai:
				num--
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// ParseAddrs parses multiaddrs ending in /p2p/ID into peers.
func ParseAddrs(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("bad multiaddr %q: %w", s, err)
		}
		mas = append(mas, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("a peer address must end in /p2p/ID: %w", err)
	}
	return infos, nil
}
