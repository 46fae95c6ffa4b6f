package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// relayClient is a host with libp2p's circuit-relay client, on loopback.
func relayClient(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

type relayLab struct {
	r      *Relay
	info   peer.AddrInfo
	events chan RelayEvent
}

func startRelay(t *testing.T, cfg RelayConfig) *relayLab {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &relayLab{events: make(chan RelayEvent, 256)}
	cfg.Host = HostConfig{Identity: key, Listen: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}}
	cfg.OnEvent = func(ev RelayEvent) { l.events <- ev }
	if l.r, err = NewRelayHost(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.r.Close() })
	l.info = peer.AddrInfo{ID: l.r.Host.ID(), Addrs: l.r.Host.Addrs()}
	return l
}

// next waits for the relay's next event of kind.
func (l *relayLab) next(t *testing.T, kind RelayEventKind) RelayEvent {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-l.events:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no relay event of kind %d within 20s", kind)
		}
	}
}

func (l *relayLab) check(t *testing.T, h host.Host) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got error
	CheckRelays(ctx, h, []peer.AddrInfo{l.info}, func(c RelayCheck) { got = c.Err })
	return got
}

func (l *relayLab) dialThrough(h host.Host, dest peer.ID) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	circuit := l.info.Addrs[0].Encapsulate(ma.StringCast("/p2p/" + l.info.ID.String() + "/p2p-circuit"))
	return h.Connect(ctx, peer.AddrInfo{ID: dest, Addrs: []ma.Multiaddr{circuit}})
}

// TestRelayAllowList: only listed peers get a slot, the others hear why,
// and a circuit to a peer without a slot is refused with its reason.
func TestRelayAllowList(t *testing.T) {
	member, stranger, sender := relayClient(t), relayClient(t), relayClient(t)
	allow, err := NewAllowList([]peer.ID{member.ID()}, "")
	if err != nil {
		t.Fatal(err)
	}
	l := startRelay(t, RelayConfig{Allow: allow})

	if err := l.check(t, member); err != nil {
		t.Fatalf("member: %v", err)
	}
	if ev := l.next(t, RelayReservation); ev.Peer != member.ID() || !ev.Accepted {
		t.Fatalf("reservation event %+v, want the member accepted", ev)
	}

	err = l.check(t, stranger)
	var re *RelayRefusedError
	if !errors.As(err, &re) || !re.Reserve || re.Reason != ReasonNotAllowed || re.Relay != l.info.ID {
		t.Fatalf("stranger: %v, want a refusal for not being on the allow-list", err)
	}
	want := "relay " + l.info.ID.String() + " refused a reservation: not on its allow-list"
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if ev := l.next(t, RelayReservation); ev.Peer != stranger.ID() || ev.Accepted || ev.Reason != ReasonNotAllowed {
		t.Fatalf("reservation event %+v, want the stranger refused as not allowed", ev)
	}

	err = l.dialThrough(sender, stranger.ID())
	if re, ok := RelayRefusal(err); !ok || re.Reason != ReasonNoReservation || re.Permanent() {
		t.Fatalf("circuit to the stranger: %v, want a refusal for holding no reservation", err)
	}
	if ev := l.next(t, RelayCircuitRefused); ev.Peer != sender.ID() || ev.Dest != stranger.ID() || ev.Reason != ReasonNoReservation {
		t.Fatalf("refusal event %+v", ev)
	}

	if err := l.dialThrough(sender, member.ID()); err != nil {
		t.Fatalf("circuit to the member: %v", err)
	}
	if ev := l.next(t, RelayCircuitOpened); ev.Peer != sender.ID() || ev.Dest != member.ID() {
		t.Fatalf("opened event %+v", ev)
	}
}

// TestRelayQuota: a sender that uses up its quota has its circuit ended,
// and its next circuit refused, with the quota as the reason.
func TestRelayQuota(t *testing.T) {
	const quota = 1 << 20
	member, sender := relayClient(t), relayClient(t)
	allow, err := NewAllowList([]peer.ID{member.ID()}, "")
	if err != nil {
		t.Fatal(err)
	}
	l := startRelay(t, RelayConfig{Allow: allow, PeerQuota: quota})
	if err := l.check(t, member); err != nil {
		t.Fatal(err)
	}
	received := make(chan int64, 1)
	member.SetStreamHandler("/test/sink", func(s network.Stream) {
		n, _ := io.Copy(io.Discard, s)
		received <- n
	})
	if err := l.dialThrough(sender, member.ID()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(context.Background(), "test"), 20*time.Second)
	defer cancel()
	s, err := sender.NewStream(ctx, member.ID(), "/test/sink")
	if err != nil {
		t.Fatal(err)
	}
	_ = s.SetWriteDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 64<<10)
	var wrote int64
	for wrote < 4*quota {
		n, err := s.Write(buf)
		wrote += int64(n)
		if err != nil {
			break
		}
	}
	if wrote >= 4*quota {
		t.Fatalf("wrote %d bytes through a relay with a quota of %d", wrote, quota)
	}
	ev := l.next(t, RelayCircuitClosed)
	if ev.Reason != ReasonQuota || ev.Bytes < quota || ev.Bytes > 2*quota {
		t.Fatalf("closed event %+v, want the quota as reason after about %d bytes", ev, quota)
	}
	select {
	case n := <-received:
		if n > quota+64<<10 {
			t.Fatalf("member received %d bytes, quota %d", n, quota)
		}
	case <-ctx.Done():
		t.Fatal("the member's stream did not end")
	}

	// Only the relay may carry the next try: forget the member's own
	// addresses, learned over the circuit.
	_ = sender.Network().ClosePeer(member.ID())
	sender.Peerstore().ClearAddrs(member.ID())
	err = l.dialThrough(sender, member.ID())
	re, ok := RelayRefusal(err)
	if !ok || re.Reason != ReasonQuota || !re.Permanent() {
		t.Fatalf("a new circuit: %v, want a refusal for the quota", err)
	}
	if want := "the relay refused the connection: the relay's daily quota for this peer is used up"; re.Error() != want {
		t.Fatalf("message %q, want %q", re, want)
	}
	if ev := l.next(t, RelayCircuitRefused); ev.Reason != ReasonQuota {
		t.Fatalf("refusal event %+v, want the quota", ev)
	}
}

// TestRelayRefusalText reads the refusal out of libp2p's dial errors,
// which carry it only as text, and prefers the most telling answer.
func TestRelayRefusalText(t *testing.T) {
	for _, tc := range []struct {
		err  string
		want RelayReason
	}{
		{"failed to dial 12D3: all dials failed\n  * [/ip4/7.0.0.1/udp/4747/quic-v1/p2p/12D3R/p2p-circuit] error opening relay circuit: NO_RESERVATION (204)", ReasonNoReservation},
		{"failed to dial: * [/a/p2p-circuit] error opening relay circuit: CONNECTION_FAILED (203)\n  * [/b/p2p-circuit] error opening relay circuit: PERMISSION_DENIED (202)", ReasonQuota},
		{"error opening relay circuit: RESOURCE_LIMIT_EXCEEDED (201)", ReasonCircuits},
		{"error opening relay circuit: SOMETHING_NEW (299)", ReasonOther},
		{"context deadline exceeded", ReasonNone},
	} {
		re, ok := RelayRefusal(errors.New(tc.err))
		if tc.want == ReasonNone {
			if ok {
				t.Errorf("%q: found %v, want none", tc.err, re)
			}
			continue
		}
		if !ok || re.Reason != tc.want {
			t.Errorf("%q: %v, want %v", tc.err, re, tc.want)
		}
	}
	wrapped := fmt.Errorf("connect: %w", &RelayRefusedError{Reason: ReasonQuota})
	if re, ok := RelayRefusal(wrapped); !ok || !re.Permanent() {
		t.Errorf("a wrapped refusal: %v %v", re, ok)
	}
}

// TestRelayReload: a peer taken off the allow-list file loses its slot
// when the relay reads the file again, and is refused a new one.
func TestRelayReload(t *testing.T) {
	member := relayClient(t)
	file := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(file, []byte("# the team\n"+member.ID().String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	allow, err := NewAllowList(nil, file)
	if err != nil {
		t.Fatal(err)
	}
	l := startRelay(t, RelayConfig{Allow: allow})
	if err := l.check(t, member); err != nil {
		t.Fatal(err)
	}
	disconnected := make(chan struct{}, 1)
	member.Network().Notify(&network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == l.info.ID {
			select {
			case disconnected <- struct{}{}:
			default:
			}
		}
	}})
	if err := os.WriteFile(file, []byte("# nobody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := l.r.Reload(); err != nil || n != 0 {
		t.Fatalf("Reload: %d peers, %v; want 0 and no error", n, err)
	}
	select {
	case <-disconnected:
	case <-time.After(20 * time.Second):
		t.Fatal("the relay kept its connection to a peer taken off the list")
	}
	var re *RelayRefusedError
	if err := l.check(t, member); !errors.As(err, &re) || re.Reason != ReasonNotAllowed {
		t.Fatalf("a new reservation: %v, want a refusal as not allowed", err)
	}
}
