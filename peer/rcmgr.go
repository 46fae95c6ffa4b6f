package peer

import (
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/dshare/dshare/peer/engine"
)

// Resource-manager limits for dshare's protocol, on top of libp2p's
// defaults. libp2p enforces them when a stream is negotiated and when a
// data stream reserves its chunk buffer, before dshare reads anything.
// The per-peer numbers leave room for one transfer's control stream and
// engine.MaxDataStreams data streams, plus a superseded session winding down.
var (
	protocolLimit = rcmgr.BaseLimit{
		Streams: 2048, StreamsInbound: 1024, StreamsOutbound: 1024,
		Memory: 256 << 20,
	}
	protocolPeerLimit = rcmgr.BaseLimit{
		Streams: 3 * engine.MaxDataStreams * 2, StreamsInbound: 3 * engine.MaxDataStreams, StreamsOutbound: 3 * engine.MaxDataStreams,
		Memory: 2 * engine.MaxDataStreams << 20,
	}
	// Memory is reserved per data stream for its chunk buffer.
	serviceLimit     = rcmgr.BaseLimit{Streams: 2048, StreamsInbound: 1024, StreamsOutbound: 1024, Memory: 160 << 20}
	servicePeerLimit = rcmgr.BaseLimit{Streams: 6 * engine.MaxDataStreams, StreamsInbound: 3 * engine.MaxDataStreams, StreamsOutbound: 3 * engine.MaxDataStreams, Memory: 2 * engine.MaxDataStreams << 20}
	// A get stream waits in the sharer's queue holding almost nothing, so
	// a sharer admits many: the queue, not the stream count, is what
	// bounds a crowd (engine.Sharer).
	getLimit     = rcmgr.BaseLimit{Streams: 16384, StreamsInbound: 16384, StreamsOutbound: 1024, Memory: 64 << 20}
	getPeerLimit = rcmgr.BaseLimit{Streams: 128, StreamsInbound: 80, StreamsOutbound: 80, Memory: 1 << 20}
)

// crowdConns is how many inbound connections a crowd host admits.
const crowdConns = 4096

// newResourceManager returns libp2p's default resource manager with
// dshare's limits added.
func newResourceManager(crowd bool) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	// A send may spread its data over MaxLanes connections (lanes.go).
	limits.PeerBaseLimit.ConnsInbound = max(limits.PeerBaseLimit.ConnsInbound, MaxLanes+4)
	limits.PeerBaseLimit.ConnsOutbound = max(limits.PeerBaseLimit.ConnsOutbound, MaxLanes+4)
	limits.PeerBaseLimit.Conns = max(limits.PeerBaseLimit.Conns, MaxLanes+8)
	limits.AddProtocolLimit(ProtocolID, protocolLimit, rcmgr.BaseLimitIncrease{})
	limits.AddProtocolPeerLimit(ProtocolID, protocolPeerLimit, rcmgr.BaseLimitIncrease{})
	limits.AddProtocolLimit(GetProtocolID, getLimit, rcmgr.BaseLimitIncrease{})
	limits.AddProtocolPeerLimit(GetProtocolID, getPeerLimit, rcmgr.BaseLimitIncrease{})
	limits.AddServiceLimit(ServiceName, serviceLimit, rcmgr.BaseLimitIncrease{})
	limits.AddServicePeerLimit(ServiceName, servicePeerLimit, rcmgr.BaseLimitIncrease{})
	scaled := limits.AutoScale()
	if crowd {
		// A sharer's getters each hold one connection and one get
		// stream while they wait; a QUIC connection shares the one
		// UDP socket, so it costs memory but no descriptor.
		raise := func(l *rcmgr.ResourceLimits) {
			l.Conns, l.ConnsInbound = max(l.Conns, crowdConns+256), max(l.ConnsInbound, crowdConns)
			l.Streams, l.StreamsInbound = max(l.Streams, 2*crowdConns+2048), max(l.StreamsInbound, 2*crowdConns)
		}
		sys, tr := scaled.ToPartialLimitConfig().System, scaled.ToPartialLimitConfig().Transient
		raise(&sys)
		raise(&tr)
		partial := scaled.ToPartialLimitConfig()
		partial.System, partial.Transient = sys, tr
		scaled = partial.Build(scaled)
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(scaled))
}
