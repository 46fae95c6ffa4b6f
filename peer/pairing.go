package peer

import (
	"context"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/dshare/dshare/peer/pair"
	"github.com/dshare/dshare/wire"
)

// PairProtocolID is the protocol on which a sender proves a code or a
// ticket before it offers anything.
const PairProtocolID protocol.ID = "/dshare/pair/1"

// ServePairing answers pairing streams on h with ph until ctx ends.
// report, if set, hears of every peer that proved a secret (err nil) or
// failed to.
func ServePairing(ctx context.Context, h host.Host, ph *pair.Host, report func(remote peer.ID, words string, err error)) {
	h.SetStreamHandler(PairProtocolID, func(s network.Stream) {
		if err := s.Scope().SetService(ServiceName); err != nil {
			_ = s.ResetWithError(network.StreamErrorCode(wire.CodeLimit))
			return
		}
		defer s.Close()
		remote := s.Conn().RemotePeer()
		words, err := ph.Serve(ctx, stream{s}, string(h.ID()), string(remote))
		if report != nil {
			report(remote, words, err)
		}
	})
	context.AfterFunc(ctx, func() { h.RemoveStreamHandler(PairProtocolID) })
}

// Pair proves sec to target, to which h is connected or can connect, and
// returns the verification words.
func Pair(ctx context.Context, h host.Host, target peer.ID, sec pair.Secret) (string, error) {
	s, err := h.NewStream(ctx, target, PairProtocolID)
	if err != nil {
		return "", err
	}
	_ = s.Scope().SetService(ServiceName)
	words, err := pair.Prove(ctx, stream{s}, sec, string(h.ID()), string(target))
	if err != nil {
		_ = s.Reset()
		return "", err
	}
	_ = s.Close()
	return words, nil
}
