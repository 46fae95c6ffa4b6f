package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multistream"
	"github.com/quic-go/quic-go"

	dpeer "github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/peer/pair"
	"github.com/dshare/dshare/wire"
)

// TestShareCrowd is the whole world at once: 2,000 clients, each with an
// identity of its own, ask one sharer for the same file within seconds.
// They are QUIC connections from this process (2,000 processes would not
// fit the machine), authenticated by libp2p's TLS as their own peer IDs,
// speaking the get protocol. The sharer must stay up within 300 MiB and
// answer every one with data (its turn), sleep (its place) or a typed
// error; and a real getter's high-priority get, issued mid-storm, must
// complete.
func TestShareCrowd(t *testing.T) {
	const clients, parallel = 2000, 64
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "big.bin"), 32<<20, 41)
	sh := startSharer(t, filepath.Join(tmp, "hs"), src, "--max-active", "8")
	go func() {
		for range sh.events { // drained: the sharer must never block on its output
		}
	}()
	tk, err := pair.ParseTicket(sh.ticket)
	if err != nil {
		t.Fatal(err)
	}
	target, err := lpeer.Decode(sh.peer)
	if err != nil {
		t.Fatal(err)
	}
	addr := ma.StringCast(strings.TrimSuffix(sh.addr, "/p2p/"+sh.peer))

	var srk quic.StatelessResetKey
	var tgk quic.TokenGeneratorKey
	_, _ = rand.Read(srk[:])
	_, _ = rand.Read(tgk[:])
	cm, err := quicreuse.NewConnManager(srk, tgk)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	type answer struct {
		kind string // "start", "sleep", "error", or what went wrong
		code wire.Code
	}
	answers := make([]answer, clients)
	var redials atomic.Int64
	answered := make(chan int, clients)
	var conns sync.WaitGroup
	sem := make(chan struct{}, parallel)
	began := time.Now()
	for i := range clients {
		sem <- struct{}{}
		conns.Add(1)
		go func() {
			defer conns.Done()
			first := true
			say := func(a answer) {
				if first {
					first = false
					answers[i] = a
					answered <- i
					<-sem
				}
			}
			defer say(answer{kind: "no answer"})
			key, _, err := crypto.GenerateEd25519Key(rand.Reader)
			if err != nil {
				say(answer{kind: "key: " + err.Error()})
				return
			}
			qt, err := libp2pquic.NewTransport(key, cm, nil, nil, nil)
			if err != nil {
				say(answer{kind: "transport: " + err.Error()})
				return
			}
			// libp2p's QUIC listener holds at most 16 handshakes waiting
			// to be accepted, and closes the rest with "queue full"
			// right after the handshake; a client then dials again, as
			// dshare get does.
			var c tpt.CapableConn
			var s network.MuxedStream
			for attempt := 0; ; attempt++ {
				c, s, err = openGet(ctx, qt, addr, target)
				if err == nil {
					break
				}
				if attempt == 50 || ctx.Err() != nil {
					say(answer{kind: "connect: " + err.Error()})
					return
				}
				redials.Add(1)
				time.Sleep(time.Duration(50+attempt*50) * time.Millisecond)
			}
			defer c.Close()
			defer s.Reset()
			go func() { // nothing is served here: the sharer's streams are refused
				for {
					s, err := c.AcceptStream()
					if err != nil {
						return
					}
					_ = s.Reset()
				}
			}()
			if err := wire.WriteMsg(s, &wire.Get{ReqID: uint64(i + 1), Paths: []string{"big.bin"}, Secret: tk.Rand[:]}); err != nil {
				say(answer{kind: "write: " + err.Error()})
				return
			}
			rd := wire.NewReader(s)
			for {
				m, err := rd.ReadMsg()
				if err != nil {
					say(answer{kind: "read: " + err.Error()})
					return
				}
				switch m := m.(type) {
				case *wire.Sleep:
					say(answer{kind: "sleep"})
					continue // keeps its place until its turn or the end
				case *wire.Start:
					say(answer{kind: "start"})
				case *wire.Error:
					say(answer{kind: "error", code: m.Code})
				default:
					say(answer{kind: fmt.Sprintf("unexpected %v", m.Type())})
				}
				// Its turn came: it leaves, and the next one is served.
				return
			}
		}()
	}
	counts := map[string]int{}
	for range clients {
		select {
		case i := <-answered:
			counts[answers[i].kind]++
		case <-ctx.Done():
			t.Fatalf("not every client was answered: %v", counts)
		}
	}
	storm := time.Since(began)

	// Mid-storm, with the sleepers still queued, a real getter asks first.
	queued := counts["sleep"]
	out := filepath.Join(tmp, "out")
	g := start(t, nil, getArgs(filepath.Join(tmp, "hg"), out, sh.ticket, "--priority", "10", "big.bin")...)
	if err := g.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("the high-priority get during the storm: %v\n%s", err, g.stderr)
	}
	legit := time.Since(began) - storm
	sameTree(t, filepath.Join(src, "big.bin"), filepath.Join(out, "big.bin"))
	rss := procStatus(sh.cmd.Process.Pid)["VmHWM"]
	select {
	case <-sh.done:
		t.Fatalf("the sharer died: %v\n%s", sh.err, sh.stderr)
	default:
	}
	cancel()
	conns.Wait()
	t.Logf("%d clients answered within %.1fs: %v (%d still queued when the real get came; %d dials were refused with \"queue full\" and made again); the priority-10 get finished %.1fs later; sharer peak RSS %d MiB",
		clients, storm.Seconds(), counts, queued, redials.Load(), legit.Seconds(), rss>>20)
	for kind, n := range counts {
		if kind != "start" && kind != "sleep" && kind != "error" {
			t.Errorf("%d clients got %q instead of data, a place or a typed error", n, kind)
		}
	}
	if rss > 300<<20 {
		t.Errorf("sharer peak RSS %d MiB, want at most 300", rss>>20)
	}
}

// openGet connects to the sharer as one client and opens a get stream.
func openGet(ctx context.Context, qt tpt.Transport, addr ma.Multiaddr, target lpeer.ID) (tpt.CapableConn, network.MuxedStream, error) {
	c, err := qt.Dial(ctx, addr, target)
	if err != nil {
		return nil, nil, err
	}
	s, err := c.OpenStream(ctx)
	if err == nil {
		err = multistream.SelectProtoOrFail(string(dpeer.GetProtocolID), s)
	}
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c, s, nil
}
