package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"

	"github.com/dshare/dshare/chunker"
	dpeer "github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/wire"
)

// hostile is a peer written in the test suite: it speaks dshare's wire
// protocol directly, and says whatever a test wants it to.
type hostile struct {
	t       *testing.T
	h       host.Host
	target  peer.AddrInfo
	readers map[network.Stream]*wire.Reader
}

func newHostile(t *testing.T, addr string) *hostile {
	t.Helper()
	h, err := libp2p.New(
		libp2p.NoTransports, libp2p.Transport(quic.NewTransport),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.DisableRelay(), libp2p.ResourceManager(&network.NullResourceManager{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	info, err := peer.AddrInfoFromString(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, *info); err != nil {
		t.Fatal(err)
	}
	return &hostile{t: t, h: h, target: *info, readers: map[network.Stream]*wire.Reader{}}
}

func (c *hostile) stream() network.Stream {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.h.NewStream(ctx, c.target.ID, dpeer.ProtocolID)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.Reset() })
	return s
}

// frame builds a frame of any type around any value, valid or not.
func frame(t wire.Type, body any) []byte {
	b, err := cbor.Marshal(body)
	if err != nil {
		panic(err)
	}
	return rawFrame(t, b)
}

func rawFrame(t wire.Type, body []byte) []byte {
	out := make([]byte, 5, 5+len(body))
	out[0] = byte(t)
	binary.BigEndian.PutUint32(out[1:], uint32(len(body)))
	return append(out, body...)
}

func (c *hostile) write(s network.Stream, frames ...[]byte) {
	c.t.Helper()
	for _, f := range frames {
		if _, err := s.Write(f); err != nil {
			c.t.Fatalf("write: %v", err)
		}
	}
}

// answer reads the receiver's next frame other than a progress report,
// or the error that ended the stream.
func (c *hostile) answer(s network.Stream, timeout time.Duration) (wire.Message, error) {
	rd := c.readers[s]
	if rd == nil {
		rd = wire.NewReader(s)
		c.readers[s] = rd
	}
	_ = s.SetReadDeadline(time.Now().Add(timeout))
	for {
		m, err := rd.ReadMsg()
		if _, ok := m.(*wire.Progress); !ok || err != nil {
			return m, err
		}
	}
}

// waitDone waits for the receiver's final Done.
func (c *hostile) waitDone(ctrl network.Stream) {
	c.t.Helper()
	for {
		m, err := c.answer(ctrl, 10*time.Second)
		if err != nil {
			c.t.Fatalf("no done from the receiver: %v", err)
		}
		if dn, ok := m.(*wire.Done); ok && dn.Final {
			return
		}
	}
}

// wantCode asserts that the receiver answered with a Reject or Error frame
// carrying one of codes, with a reason.
func (c *hostile) wantCode(s network.Stream, codes ...wire.Code) {
	c.t.Helper()
	m, err := c.answer(s, 10*time.Second)
	if err != nil {
		c.t.Fatalf("want %v, the stream ended: %v", codes, err)
	}
	var got wire.Code
	var text string
	switch m := m.(type) {
	case *wire.Reject:
		got, text = m.Code, m.Reason
	case *wire.Error:
		got, text = m.Code, m.Message
	default:
		c.t.Fatalf("want %v, got a %v frame", codes, m.Type())
	}
	if !slices.Contains(codes, got) || text == "" {
		c.t.Fatalf("want %v with a reason, got %v %q", codes, got, text)
	}
}

func offerFrame(reqID uint64, chunk uint32, entries ...wire.Entry) []byte {
	var total uint64
	for _, e := range entries {
		total += e.Size
	}
	return frame(wire.TypeOffer, &wire.Offer{ReqID: reqID, ChunkSize: chunk, Files: uint64(len(entries)), Bytes: total, Entries: entries})
}

// accepted sends a valid one-file offer and returns its control stream
// once the receiver has accepted.
func (c *hostile) accepted(reqID uint64, name string, size uint64) network.Stream {
	c.t.Helper()
	s := c.stream()
	c.write(s, offerFrame(reqID, 1<<20, wire.Entry{Path: name, Size: size, Mode: 0o644}))
	m, err := c.answer(s, 10*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, ok := m.(*wire.Accept); !ok {
		c.t.Fatalf("want accept, got %v: %+v", m.Type(), m)
	}
	return s
}

// dataFrame is a Data frame with any fields, bypassing wire's checks.
func dataFrame(file uint32, off uint64, length uint32, hash []byte) []byte {
	return frame(wire.TypeData, map[int]any{1: file, 2: off, 3: length, 4: hash})
}

// world is a target directory with a neighbour the receiver must never
// touch.
type world struct {
	root, target, outside string
}

func newWorld(t *testing.T) world {
	root := t.TempDir()
	w := world{root, filepath.Join(root, "target"), filepath.Join(root, "outside")}
	for _, d := range []string{w.target, w.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(w.outside, "secret.txt"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// intact asserts that nothing changed outside the target directory.
func (w world) intact(t *testing.T) {
	t.Helper()
	var names []string
	_ = filepath.Walk(w.root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !strings.HasPrefix(p, w.target+string(filepath.Separator)) {
			names = append(names, strings.TrimPrefix(p, w.root))
		}
		return nil
	})
	want := []string{"", "/outside", "/outside/secret.txt", "/target"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("outside the target: %v, want %v", names, want)
	}
	if b, _ := os.ReadFile(filepath.Join(w.outside, "secret.txt")); string(b) != "keep me" {
		t.Fatalf("secret.txt now holds %q", b)
	}
}

// TestHostilePeer runs a real receiver against a peer that breaks every
// rule. In every case the receiver must answer with a typed error, write
// nothing outside its directory, stay up, and keep its memory bounded; a
// well-behaved send must work afterwards.
func TestHostilePeer(t *testing.T) {
	w := newWorld(t)
	recv, addr := receiver(t, t.TempDir(), w.target, "--yes", "--idle-timeout", "2s")

	hash1M := func(p []byte) []byte { s := chunker.Hash(p); return s[:] }
	names := map[string][]wire.Entry{
		"traversal":          {{Path: "../outside/secret.txt", Size: 4}},
		"deep traversal":     {{Path: "a/../../outside/x", Size: 4}},
		"absolute":           {{Path: "/tmp/dshare-hostile", Size: 4}},
		"drive letter":       {{Path: "C:/x", Size: 4}},
		"backslash":          {{Path: `..\outside\x`, Size: 4}},
		"control characters": {{Path: "a\x1b[2J\x1b[1;1Hfake prompt.txt", Size: 4}},
		"bidi override":      {{Path: "invoice\u202efdp.exe", Size: 4}},
		"NUL":                {{Path: "a\x00b", Size: 4}},
		"overlong component": {{Path: strings.Repeat("x", 256), Size: 4}},
		"overlong path":      {{Path: strings.Repeat("d/", 2100) + "f", Size: 4}},
		"duplicate":          {{Path: "a", Size: 1}, {Path: "a", Size: 1}},
		"case collision":     {{Path: "Report.txt", Size: 1}, {Path: "report.TXT", Size: 1}},
		"NFC/NFD collision":  {{Path: "caf\u00e9", Size: 1}, {Path: "cafe\u0301", Size: 1}},
		"file and directory": {{Path: "a", Size: 1}, {Path: "a/b", Size: 1}},
		"our staging dir":    {{Path: ".dshare/x", Size: 1}},
		"staging dir, case":  {{Path: ".DShare/x.part", Size: 1}},
	}
	for name, entries := range names {
		t.Run("names/"+name, func(t *testing.T) {
			c := newHostile(t, addr)
			s := c.stream()
			c.write(s, offerFrame(1, 1<<20, entries...))
			c.wantCode(s, wire.CodeBadPath)
			w.intact(t)
		})
	}

	t.Run("symlinked directory", func(t *testing.T) {
		if err := os.Symlink("../outside", filepath.Join(w.target, "link")); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(w.target, "link"))
		c := newHostile(t, addr)
		s := c.stream()
		c.write(s, offerFrame(1, 1<<20, wire.Entry{Path: "link/planted.txt", Size: 5}))
		c.wantCode(s, wire.CodeBadPath)
		w.intact(t)
	})

	t.Run("symlinked staging directory", func(t *testing.T) {
		l := filepath.Join(w.target, ".dshare")
		if err := os.Symlink("../outside/secret.txt", l); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(l)
		c := newHostile(t, addr)
		s := c.stream()
		c.write(s, offerFrame(1, 1<<20, wire.Entry{Path: "victim.txt", Size: 5}))
		c.wantCode(s, wire.CodeBadPath)
		w.intact(t)
	})

	t.Run("symlinked final name", func(t *testing.T) {
		l := filepath.Join(w.target, "victim.txt")
		if err := os.Symlink("../outside/secret.txt", l); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(l)
		c := newHostile(t, addr)
		body := []byte("PWNED")
		ctrl := c.accepted(3, "victim.txt", 5)
		d := c.stream()
		c.write(d, frame(wire.TypeStart, &wire.Start{ReqID: 3}), dataFrame(0, 0, 5, hash1M(body)), body)
		_ = d.CloseWrite()
		root := chunker.Root(5, 1<<20, []chunker.Sum{chunker.Hash(body)})
		c.write(ctrl, frame(wire.TypeDone, &wire.Done{ReqID: 3, Final: true, Streams: 1, Sums: []wire.FileSum{{File: 0, Sum: root[:]}}}))
		c.waitDone(ctrl)
		// The link is kept, and the new file is placed beside it.
		if b, err := os.ReadFile(filepath.Join(w.target, "victim (1).txt")); err != nil || !bytes.Equal(b, body) {
			t.Fatalf("victim (1).txt = %q, %v", b, err)
		}
		os.Remove(filepath.Join(w.target, "victim (1).txt"))
		w.intact(t)
	})

	ranges := map[string][]byte{
		"negative offset":    dataFrame(0, 1<<63, 1<<20, make([]byte, 32)),
		"overflowing range":  dataFrame(0, math.MaxUint64-(1<<19), 1<<20, make([]byte, 32)),
		"out of bounds":      dataFrame(0, 5<<20, 1<<20, make([]byte, 32)),
		"unaligned":          dataFrame(0, 12345, 1<<20, make([]byte, 32)),
		"no such file":       dataFrame(7, 0, 1<<20, make([]byte, 32)),
		"size lie":           dataFrame(0, 2<<20, 1<<20, make([]byte, 32)), // the last chunk is 1 byte
		"oversize data":      dataFrame(0, 0, wire.MaxChunkSize+1, make([]byte, 32)),
		"short hash":         dataFrame(0, 0, 1<<20, make([]byte, 3)),
		"unknown frame type": rawFrame(0xEE, []byte{0xa0}),
		"accept on data":     frame(wire.TypeAccept, &wire.Accept{ReqID: 1}),
	}
	for name, f := range ranges {
		t.Run("ranges/"+name, func(t *testing.T) {
			c := newHostile(t, addr)
			ctrl := c.accepted(1, "ranges.bin", 2<<20+1)
			d := c.stream()
			c.write(d, frame(wire.TypeStart, &wire.Start{ReqID: 1}), f)
			// The data stream is refused and the transfer ends with a
			// protocol error on the control stream.
			c.wantCode(ctrl, wire.CodeProtocol)
			w.intact(t)
			if _, err := os.Stat(filepath.Join(w.target, "ranges.bin")); err == nil {
				t.Fatal("a file appeared under its final name")
			}
		})
	}

	t.Run("order/data before accept", func(t *testing.T) {
		c := newHostile(t, addr)
		d := c.stream()
		c.write(d, frame(wire.TypeStart, &wire.Start{ReqID: 99}), dataFrame(0, 0, 4, hash1M([]byte("evil"))), []byte("evil"))
		c.wantCode(d, wire.CodeNotFound)
		s := c.stream()
		c.write(s, dataFrame(0, 0, 4, hash1M([]byte("evil"))), []byte("evil"))
		c.wantCode(s, wire.CodeProtocol)
		w.intact(t)
	})

	t.Run("order/frames after done", func(t *testing.T) {
		c := newHostile(t, addr)
		body := []byte("hello, receiver")
		ctrl := c.accepted(5, "after-done.txt", uint64(len(body)))
		d := c.stream()
		c.write(d, frame(wire.TypeStart, &wire.Start{ReqID: 5}), dataFrame(0, 0, uint32(len(body)), hash1M(body)), body)
		_ = d.CloseWrite()
		sum := chunker.Hash(body)
		root := chunker.Root(uint64(len(body)), 1<<20, []chunker.Sum{sum})
		c.write(ctrl, frame(wire.TypeDone, &wire.Done{ReqID: 5, Final: true, Streams: 1, Sums: []wire.FileSum{{File: 0, Sum: root[:]}}}))
		c.waitDone(ctrl)
		// Everything after the end goes nowhere.
		c.write(ctrl, frame(wire.TypeDone, &wire.Done{ReqID: 5, Final: true}), dataFrame(0, 0, 4, hash1M([]byte("late"))), []byte("late"))
		d2 := c.stream()
		c.write(d2, frame(wire.TypeStart, &wire.Start{ReqID: 5}), dataFrame(0, 0, 4, hash1M([]byte("late"))), []byte("late"))
		c.wantCode(d2, wire.CodeNotFound)
		if b, err := os.ReadFile(filepath.Join(w.target, "after-done.txt")); err != nil || !bytes.Equal(b, body) {
			t.Fatalf("after-done.txt = %q, %v", b, err)
		}
		w.intact(t)
	})

	t.Run("framing/oversize length prefix", func(t *testing.T) {
		c := newHostile(t, addr)
		s := c.stream()
		c.write(s, []byte{byte(wire.TypeOffer), 0xff, 0xff, 0xff, 0xff})
		c.wantCode(s, wire.CodeProtocol)
	})

	t.Run("framing/deeply nested CBOR", func(t *testing.T) {
		c := newHostile(t, addr)
		s := c.stream()
		nested := append(bytes.Repeat([]byte{0x81}, 100000), 0x00) // [[[[...0...]]]]
		c.write(s, rawFrame(wire.TypeOffer, nested))
		c.wantCode(s, wire.CodeProtocol)
	})

	t.Run("framing/huge announced manifest", func(t *testing.T) {
		c := newHostile(t, addr)
		s := c.stream()
		c.write(s, frame(wire.TypeOffer, &wire.Offer{ReqID: 1, ChunkSize: 1 << 20, Files: 1 << 40, More: true}))
		c.wantCode(s, wire.CodeLimit)
	})

	t.Run("abuse/tiny chunks", func(t *testing.T) {
		// A 1-byte chunk size would need a hash per byte.
		c := newHostile(t, addr)
		s := c.stream()
		c.write(s, offerFrame(1, 1, wire.Entry{Path: "big", Size: 1 << 40}))
		c.wantCode(s, wire.CodeProtocol)
	})

	t.Run("abuse/slow drip", func(t *testing.T) {
		c := newHostile(t, addr)
		s := c.stream()
		f := offerFrame(1, 1<<20, wire.Entry{Path: "drip.txt", Size: 1})
		start := time.Now()
		var err error
		for i := 0; i < len(f) && err == nil; i++ {
			_, err = s.Write(f[i : i+1])
			time.Sleep(300 * time.Millisecond)
		}
		if err == nil {
			_, err = c.answer(s, 10*time.Second)
		}
		if err == nil {
			t.Fatal("a stream dripping one byte every 300 ms was served")
		}
		if d := time.Since(start); d > 6*time.Second {
			t.Fatalf("the drip held a stream for %v with a 2s idle timeout", d)
		}
	})

	t.Run("abuse/stream flood", func(t *testing.T) {
		c := newHostile(t, addr)
		refused := floodStreams(t, c, 2000)
		if refused < 2000-dpeer.DefaultStreamsPerPeer {
			t.Fatalf("only %d of 2000 streams refused", refused)
		}
		t.Logf("%d of 2000 streams from one peer refused", refused)
	})

	select {
	case <-recv.done:
		t.Fatalf("the receiver died: %v\n%s", recv.err, recv.stderr)
	default:
	}
	if rss := peakRSS(t, recv.cmd.Process.Pid); rss > 256<<20 {
		t.Fatalf("receiver peak RSS %d MiB", rss>>20)
	} else {
		t.Logf("receiver peak RSS %.1f MiB", float64(rss)/(1<<20))
	}
	if strings.ContainsRune(recv.stderr.String(), 0x1b) {
		t.Fatal("an escape character reached the receiver's terminal output")
	}

	// A well-behaved sender still gets through.
	src := filepath.Join(t.TempDir(), "good.bin")
	writeRandom(t, src, 3<<20, 9)
	if _, errOut, err := dshare(t, time.Minute, "send", "--home", t.TempDir(), "--offline", "--json", src, addr); err != nil {
		t.Fatalf("good send after the attacks: %v\n%s", err, errOut)
	}
	if fileHash(t, src) != fileHash(t, filepath.Join(w.target, "good.bin")) {
		t.Fatal("good.bin differs")
	}
	w.intact(t)
}

// floodStreams opens n streams at once, each writing the start of an offer
// and then nothing, and returns how many the receiver refused outright
// (reset, or never negotiated) rather than timing out.
func floodStreams(t *testing.T, c *hostile, n int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := make(chan bool, n)
	for range n {
		go func() {
			s, err := c.h.NewStream(ctx, c.target.ID, dpeer.ProtocolID)
			if err != nil {
				results <- true
				return
			}
			defer s.Reset()
			_, _ = s.Write([]byte{byte(wire.TypeOffer), 0, 0})
			_ = s.SetReadDeadline(time.Now().Add(20 * time.Second))
			start := time.Now()
			_, err = s.Read(make([]byte, 1))
			var se *network.StreamError
			results <- err != nil && (errors.As(err, &se) || time.Since(start) < time.Second)
		}()
	}
	refused := 0
	for range n {
		if <-results {
			refused++
		}
	}
	return refused
}

// TestFlood floods a receiver with streams and connections from many
// peers while a well-behaved transfer runs. The transfer must complete,
// and the receiver's peak RSS stay under 256 MiB.
func TestFlood(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 256 << 20
	}
	srcDir, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	writeRandom(t, filepath.Join(srcDir, "good.bin"), size, 11)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes", "--idle-timeout", "5s")
	send := start(t, nil, "send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", filepath.Join(srcDir, "good.bin"), addr)
	send.next(t, "accepted", 30*time.Second)

	const peers, streamsEach, conns = 20, 300, 200
	var refused, opened atomic.Int64
	// The stream flooders connect first: the connection flood below may
	// fill the receiver's limit on new connections, and a flooder
	// refused at the door would flood nothing.
	flooders := make([]*hostile, peers)
	for i := range flooders {
		flooders[i] = newHostile(t, addr)
	}
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		var wg sync.WaitGroup
		for _, c := range flooders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				refused.Add(int64(floodStreams(t, c, streamsEach)))
			}()
		}
		// Connections from as many identities, each holding one stream.
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c, id, err := tryHostile(addr); err == nil {
					opened.Add(1)
					if s, err := c.NewStream(context.Background(), id, dpeer.ProtocolID); err == nil {
						_, _ = s.Write([]byte{1})
					}
					time.Sleep(3 * time.Second)
					c.Close()
				}
			}()
		}
		wg.Wait()
	}()

	// Many connections under one identity: the receiver admits
	// MaxLanes+4 per peer (a sender's lanes, and spares) and closes the
	// excess after the handshake. Each client holds its connection until
	// the count is read; the count must come down to that within a
	// deadline (a loaded receiver takes a moment to close them).
	const sameID = dpeer.MaxLanes + 4 + 24 // more than a peer may hold
	const perPeerConns = dpeer.MaxLanes + 4
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	var clients []*sameClient
	var cmu sync.Mutex
	var sameWG, tried sync.WaitGroup
	release := make(chan struct{})
	for range sameID {
		sameWG.Add(1)
		tried.Add(1)
		go func() {
			defer sameWG.Done()
			c, id, err := tryHostile(addr, libp2p.Identity(key))
			if err != nil {
				tried.Done()
				return
			}
			defer c.Close()
			cmu.Lock()
			clients = append(clients, &sameClient{h: c, id: id})
			cmu.Unlock()
			tried.Done()
			<-release
		}()
	}
	connected := func() int {
		cmu.Lock()
		defer cmu.Unlock()
		n := 0
		for _, c := range clients {
			if c.h.Network().Connectedness(c.id) == network.Connected {
				n++
			}
		}
		return n
	}
	tried.Wait() // every attempt has connected or failed
	var sameConnected int
	for deadline := time.Now().Add(30 * time.Second); ; {
		if sameConnected = connected(); sameConnected <= perPeerConns || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(release)

	done := send.next(t, "done", 3*time.Minute)
	if err := send.wait(t, 30*time.Second); err != nil {
		t.Fatalf("send during the flood: %v\n%s", err, send.stderr)
	}
	<-flooded
	sameWG.Wait()
	t.Logf("%d of %d connections under one peer ID stayed up", sameConnected, sameID)
	if sameConnected > perPeerConns {
		t.Fatalf("%d connections from one peer stayed up after 30 s, want at most %d", sameConnected, perPeerConns)
	}
	select {
	case <-recv.done:
		t.Fatalf("the receiver died: %v\n%s", recv.err, recv.stderr)
	default:
	}
	rss := peakRSS(t, recv.cmd.Process.Pid)
	t.Logf("flood: %d of %d streams refused, %d of %d connections made; good transfer %d bytes in %.1fs, %d sessions; receiver peak RSS %.1f MiB",
		refused.Load(), peers*streamsEach, opened.Load(), conns, done.num("bytes"), done["seconds"], done.num("sessions"), float64(rss)/(1<<20))
	if rss > 256<<20 {
		t.Fatalf("receiver peak RSS %d MiB under the flood", rss>>20)
	}
	if refused.Load() == 0 {
		t.Fatal("no stream was refused: the flood did not reach the limits")
	}
	sameTree(t, srcDir, out)
}

// sameClient is one of many connections made under one identity.
type sameClient struct {
	h  host.Host
	id peer.ID
}

// tryHostile connects a fresh identity to addr, or fails.
func tryHostile(addr string, opts ...libp2p.Option) (host.Host, peer.ID, error) {
	h, err := libp2p.New(append([]libp2p.Option{libp2p.NoTransports, libp2p.Transport(quic.NewTransport),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.DisableRelay(), libp2p.ResourceManager(&network.NullResourceManager{})}, opts...)...)
	if err != nil {
		return nil, "", err
	}
	info, err := peer.AddrInfoFromString(addr)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = h.Connect(ctx, *info)
		cancel()
	}
	if err != nil {
		h.Close()
		return nil, "", err
	}
	return h, info.ID, nil
}
