package discovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/zeroconf/v2"
	ma "github.com/multiformats/go-multiaddr"
)

// ServiceName is the mDNS service receivers announce. It differs from
// libp2p's generic one so that only dshare receivers answer.
const ServiceName = "_dshare-recv._udp"

const dnsaddrPrefix = "dnsaddr="

type ignore struct{}

func (ignore) HandlePeerFound(peer.AddrInfo) {}

// Announce makes h findable as a receiver on the LAN until the returned
// function is called.
func Announce(h host.Host) (stop func(), err error) {
	svc := mdns.NewMdnsService(h, ServiceName, ignore{})
	if err := svc.Start(); err != nil {
		return nil, err
	}
	return func() { svc.Close() }, nil
}

// ErrNoLAN says that mDNS cannot run: no interface here can multicast.
var ErrNoLAN = errors.New("no network interface here can reach a local network")

// Browse sends what it finds of receivers on the LAN to found, at most once
// per peer, until ctx is done. It announces nothing itself.
func Browse(ctx context.Context, self peer.ID, found func(peer.AddrInfo)) error {
	entries := make(chan *zeroconf.ServiceEntry, 64)
	over := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen := map[peer.ID]bool{}
		for {
			var e *zeroconf.ServiceEntry
			ok := true
			select {
			case e, ok = <-entries:
			case <-over:
				// zeroconf closes entries only if it got as far as
				// browsing; once Browse has returned, nothing more
				// comes, so what is buffered is all.
				select {
				case e, ok = <-entries:
				default:
					return
				}
			}
			if !ok {
				return
			}
			for _, info := range parseEntry(e.Text) {
				if info.ID == self || seen[info.ID] {
					continue
				}
				seen[info.ID] = true
				found(info)
			}
		}
	}()
	err := zeroconf.Browse(ctx, ServiceName, "local", entries)
	close(over)
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNoLAN, err)
	}
	return nil
}

// parseEntry reads libp2p's mDNS TXT records: "dnsaddr=<multiaddr>/p2p/<id>".
func parseEntry(txt []string) []peer.AddrInfo {
	var addrs []ma.Multiaddr
	for _, s := range txt {
		if !strings.HasPrefix(s, dnsaddrPrefix) {
			continue
		}
		a, err := ma.NewMultiaddr(s[len(dnsaddrPrefix):])
		if err != nil {
			continue
		}
		addrs = append(addrs, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return nil
	}
	return infos
}
