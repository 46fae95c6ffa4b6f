package peer

import (
	"context"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/dshare/dshare/peer/engine"
	"github.com/dshare/dshare/wire"
)

// Receiver serves dshare's protocol on a libp2p host, writing files below
// Dir. It is the engine's receiving side behind libp2p streams.
type Receiver struct {
	Host host.Host
	Dir  string
	// Decide is asked about every valid offer; a nil error accepts it. A
	// nil Decide accepts everything.
	Decide func(ctx context.Context, o *Offer) error
	// Notify, if set, receives events. It must not block for long.
	Notify func(Event)
	// Overwrite replaces existing files instead of keeping both.
	Overwrite bool
	// Allow, if set, names the only peers served. Streams from others are
	// refused before anything they send is read. The peer is the one the
	// connection authenticated, never one named in a message.
	Allow func(peer.ID) bool
	// Limits bound what peers can make the receiver hold.
	Limits Limits
	// Journal, if set, remembers the files received into Dir, so that a
	// re-offer of one is answered as held. See JournalPath.
	Journal string
	// BeforeDone: see engine.Receiver.
	BeforeDone func(Event) error

	engine *engine.Receiver // set by Start
}

// Start registers the receiver on its host: once it returns, peers'
// streams are handled, until ctx ends. Serve calls it if it was not
// called, so that whoever announces the receiver can first call Start.
func (r *Receiver) Start(ctx context.Context) error {
	if r.engine != nil {
		return nil
	}
	e := &engine.Receiver{Dir: r.Dir, Decide: r.Decide, Notify: r.Notify, Overwrite: r.Overwrite,
		Limits: r.Limits, Journal: r.Journal, BeforeDone: r.BeforeDone}
	if r.Allow != nil {
		e.Allow = func(p string) bool { id, err := peer.Decode(p); return err == nil && r.Allow(id) }
	}
	if err := e.Start(); err != nil {
		return err
	}
	r.engine = e
	r.Host.SetStreamHandler(ProtocolID, func(s network.Stream) {
		if err := s.Scope().SetService(ServiceName); err != nil {
			_ = s.ResetWithError(network.StreamErrorCode(wire.CodeLimit))
			return
		}
		c := s.Conn()
		e.Handle(ctx, stream{s}, c.RemotePeer().String(), c)
	})
	return nil
}

// Serve handles dshare streams until ctx is canceled.
func (r *Receiver) Serve(ctx context.Context) error {
	if err := r.Start(ctx); err != nil {
		return err
	}
	e := r.engine
	<-ctx.Done()
	r.Host.RemoveStreamHandler(ProtocolID)
	e.Stop()
	return nil
}
