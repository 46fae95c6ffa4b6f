package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"lukechampine.com/blake3"

	"github.com/dshare/dshare/chunker"
	dpeer "github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/wire"
)

// The tests of this file attack the receiver's transfer engine: a second
// peer writing the same name, senders that go silent, links planted at
// the receiver's temporary names, and offers built to make it hold as
// much memory as its limits allow.

// hxDeadline ends the test binary if t runs past d, so that no test here
// can hang the run however the receiver misbehaves.
func hxDeadline(t *testing.T, d time.Duration) {
	t.Helper()
	name := t.Name()
	timer := time.AfterFunc(d, func() {
		panic(fmt.Sprintf("%s: still running after its %v deadline", name, d))
	})
	t.Cleanup(func() { timer.Stop() })
}

// hxSeed returns the seed for a test's random choices and logs it;
// HX_SEED replays a run.
func hxSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("HX_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("HX_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with HX_SEED=%d)", seed, seed)
	return seed
}

// hxChunk returns chunk i of the content named by seed and tag: n bytes
// that any other seed, tag or index does not produce.
func hxChunk(seed uint64, tag byte, i, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(i))
	key[16] = tag
	p := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(p)
	return p
}

// hxWriteChunks writes the content of seed and tag, size bytes in chunks
// of chunk bytes, to path, and returns its whole-file hash.
func hxWriteChunks(t *testing.T, path string, size, chunk int, seed uint64, tag byte) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := blake3.New(32, nil)
	for i := 0; i*chunk < size; i++ {
		p := hxChunk(seed, tag, i, min(chunk, size-i*chunk))
		h.Write(p)
		if _, err := f.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// hxContentHash is the whole-file hash of the content of seed and tag.
func hxContentHash(size, chunk int, seed uint64, tag byte) [32]byte {
	h := blake3.New(32, nil)
	for i := 0; i*chunk < size; i++ {
		h.Write(hxChunk(seed, tag, i, min(chunk, size-i*chunk)))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// hxPeerID returns the peer ID of the dshare identity in home, creating it.
func hxPeerID(t *testing.T, home string) string {
	t.Helper()
	out, errOut, err := dshare(t, 30*time.Second, "id", "--home", home)
	if err != nil {
		t.Fatalf("dshare id: %v\n%s", err, errOut)
	}
	return strings.TrimSpace(out)
}

// hxNextFrom returns the next event named name about peer id, skipping
// every other event.
func hxNextFrom(t testing.TB, p *proc, name, id string, timeout time.Duration) event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				t.Fatalf("the receiver ended before a %q event from %s: %v\n%s", name, id, p.err, p.stderr)
			}
			if e.str("event") == name && e.str("peer") == id {
				return e
			}
		case <-deadline:
			t.Fatalf("no %q event from %s within %v", name, id, timeout)
		}
	}
}

// hxNextOf returns the next event named any of names.
func hxNextOf(t testing.TB, p *proc, timeout time.Duration, names ...string) event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				t.Fatalf("the receiver ended before a %v event: %v\n%s", names, p.err, p.stderr)
			}
			if slices.Contains(names, e.str("event")) {
				return e
			}
		case <-deadline:
			t.Fatalf("no %v event within %v", names, timeout)
		}
	}
}

// hxAlive fails t if the receiver has exited.
func hxAlive(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("the receiver died: %v\n%s", p.err, p.stderr)
	default:
	}
}

// hxNormalSend sends a small file with the real sender, as a user would,
// and checks that it arrived whole: the receiver still serves.
func hxNormalSend(t *testing.T, addr, target, name string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	writeRandom(t, src, 3<<20+12345, uint64(len(name)))
	out, errOut, err := dshare(t, 2*time.Minute, "send", "--home", t.TempDir(), "--offline", "--json", "--retry-for", "0", src, addr)
	if err != nil {
		t.Fatalf("a normal send after the attack failed: %v\n%s", err, errOut)
	}
	got := name
	if rn, ok := lastEvent(t, out)["renamed"].(map[string]any); ok {
		if n, ok := rn[name].(string); ok {
			got = n
		}
	}
	if fileHash(t, src) != fileHash(t, filepath.Join(target, got)) {
		t.Fatalf("the normal send's %s differs from its source", got)
	}
}

// hxConfirmed reads a hostile sender's control stream until the receiver
// has confirmed want bytes of the transfer.
func hxConfirmed(t *testing.T, c *hostile, ctrl network.Stream, want uint64, timeout time.Duration) {
	t.Helper()
	rd := c.readers[ctrl]
	if rd == nil {
		rd = wire.NewReader(ctrl)
		c.readers[ctrl] = rd
	}
	_ = ctrl.SetReadDeadline(time.Now().Add(timeout))
	for {
		m, err := rd.ReadMsg()
		if err != nil {
			t.Fatalf("waiting for the receiver to confirm %d bytes: %v", want, err)
		}
		p, ok := m.(*wire.Progress)
		if !ok {
			t.Fatalf("waiting for the receiver to confirm %d bytes, got a %v frame: %+v", want, m.Type(), m)
		}
		if p.Bytes >= want {
			return
		}
	}
}

// TestHxSecondPeerSubstitution runs an honest sender A and, in the middle
// of its transfer, a hostile peer B that offers the same name and size and
// sends other bytes for every chunk, but never Done. A's file must arrive
// whole under the name A is told; B's bytes must appear under no final
// name, and no file may mix the two.
func TestHxSecondPeerSubstitution(t *testing.T) {
	hxDeadline(t, 5*time.Minute)
	const size, chunk = 150 << 20, 1 << 20
	const chunks = size / chunk
	seed := hxSeed(t)
	w := newWorld(t)
	src := filepath.Join(t.TempDir(), "f.bin")
	aSum := hxWriteChunks(t, src, size, chunk, seed, 'A')
	bSum := hxContentHash(size, chunk, seed, 'B')
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	recv, addr := receiver(t, t.TempDir(), w.target, "--yes")

	// A goes through a proxy, so that it can be held mid-transfer while
	// B writes, then let go while B writes the rest.
	proxy := newUDPProxy(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udpPort(t, addr)})
	viaProxy := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1/p2p/%s", proxy.port(), peerOf(addr))
	homeA := t.TempDir()
	aID := hxPeerID(t, homeA)
	a := start(t, nil, "send", "--home", homeA, "--offline", "--json", src, viaProxy)
	for {
		n := a.next(t, "progress", time.Minute).num("bytes")
		if n >= size {
			t.Fatal("A finished before B could start: nothing was tested")
		}
		if n > 0 {
			t.Logf("A holds at %d of %d bytes confirmed", n, size)
			break
		}
	}
	proxy.blackhole.Store(true)

	b := newHostile(t, addr)
	const reqB = 77
	ctrl := b.stream()
	b.write(ctrl, offerFrame(reqB, chunk, wire.Entry{Path: "f.bin", Size: size, Mode: 0o644, MTime: fi.ModTime().UnixNano()}))
	m, err := b.answer(ctrl, 10*time.Second)
	if err != nil {
		t.Fatalf("B's offer: %v", err)
	}
	acc, ok := m.(*wire.Accept)
	if !ok {
		t.Fatalf("B's offer: want accept, got %v %+v", m.Type(), m)
	}
	if len(acc.Held) > 0 || len(acc.Have) > 0 {
		t.Fatalf("B, a new sender, was told it has parts of f.bin: held %v, have %v", acc.Held, acc.Have)
	}
	data := []network.Stream{b.stream(), b.stream()}
	for _, d := range data {
		b.write(d, frame(wire.TypeStart, &wire.Start{ReqID: reqB}))
	}
	sendB := func(from, to int) {
		for i := from; i < to; i++ {
			p := hxChunk(seed, 'B', i, chunk)
			sum := chunker.Hash(p)
			b.write(data[i%len(data)], dataFrame(0, uint64(i)*chunk, chunk, sum[:]), p)
		}
	}
	sendB(0, chunks/2)
	hxConfirmed(t, b, ctrl, chunks/2*chunk, time.Minute)
	proxy.blackhole.Store(false)
	sendB(chunks/2, chunks)
	hxConfirmed(t, b, ctrl, size, time.Minute)
	t.Logf("the receiver confirmed all %d of B's bytes; B sends no Done", size)

	done := a.next(t, "done", 3*time.Minute)
	if err := a.wait(t, 30*time.Second); err != nil {
		t.Fatalf("A's send: %v\n%s", err, a.stderr)
	}
	t.Logf("A: sessions %d, sent %d, %.1fs", done.num("sessions"), done.num("sent"), done["seconds"])
	name := "f.bin"
	if rn, ok := done["renamed"].(map[string]any); ok {
		if n, ok := rn["f.bin"].(string); ok {
			name = n
		}
	}
	if placed := hxNextFrom(t, recv, "file", aID, 30*time.Second).str("name"); placed != name {
		t.Errorf("the receiver placed A's f.bin as %q, A was told %q", placed, name)
	}
	if got := fileHash(t, filepath.Join(w.target, name)); got != aSum {
		t.Fatalf("%s, as A was told, is not A's file (B's: %v)", name, got == bSum)
	}

	// Every file under a final name is A's, once; B's bytes are nowhere.
	err = filepath.WalkDir(w.target, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(w.target, p)
		switch {
		case d.IsDir() && rel == ".dshare":
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			t.Errorf("%s is a %v, not a regular file", rel, d.Type())
			return nil
		}
		switch h := fileHash(t, p); {
		case h == bSum:
			t.Errorf("B's bytes were placed as %s", rel)
		case h != aSum:
			t.Errorf("%s is neither A's file nor B's: a mix", rel)
		case rel != name:
			t.Errorf("a second copy of A's file appeared as %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each temporary file holds chunks of one sender only.
	for _, part := range partFiles(t, w.target) {
		na, nb, holes, other := hxClassify(t, part, size, chunk, seed)
		t.Logf("%s: %d of A's chunks, %d of B's, %d holes, %d other", filepath.Base(part), na, nb, holes, other)
		if (na > 0 && nb > 0) || other > 0 {
			t.Errorf("temporary file %s mixes the senders' bytes", filepath.Base(part))
		}
	}
	w.intact(t)

	hxAlive(t, recv)
}

// hxClassify counts the chunks of a temporary file that hold A's bytes,
// B's, nothing yet, or anything else.
func hxClassify(t *testing.T, path string, size, chunk int, seed uint64) (a, b, holes, other int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, chunk)
	zero := make([]byte, chunk)
	for i := 0; i*chunk < size; i++ {
		n := min(chunk, size-i*chunk)
		k, err := f.ReadAt(buf[:n], int64(i*chunk))
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		p := buf[:n]
		clear(p[k:])
		switch {
		case slices.Equal(p, zero[:n]):
			holes++
		case slices.Equal(p, hxChunk(seed, 'A', i, n)):
			a++
		case slices.Equal(p, hxChunk(seed, 'B', i, n)):
			b++
		default:
			other++
		}
	}
	return a, b, holes, other
}

// TestHxSilentSender has a hostile peer go silent at each point of an
// accepted transfer. The receiver must end the transfer with the timeout
// code within idle timeout + 5 s of the last byte that made progress,
// tell the peer on its control stream, and go on serving. The last two
// cases are not silent: they keep sending chunks that make no progress.
func TestHxSilentSender(t *testing.T) {
	hxDeadline(t, 5*time.Minute)
	const idle = 3 * time.Second
	w := newWorld(t)
	recv, addr := receiver(t, t.TempDir(), w.target, "--yes", "--idle-timeout", idle.String())
	body := make([]byte, 1<<20)
	sum := chunker.Hash(body)
	bad := make([]byte, len(sum))
	cases := []struct {
		name string
		// stall sends what the peer sends after the accept, if anything,
		// and returns when its last byte that could make progress was
		// sent, and a function that stops whatever it keeps sending.
		stall func(c *hostile, ctrl network.Stream, reqID uint64) (time.Time, func())
	}{
		{"nothing after accept", nil},
		{"done announcing two streams", func(c *hostile, ctrl network.Stream, reqID uint64) (time.Time, func()) {
			c.write(ctrl, frame(wire.TypeDone, &wire.Done{ReqID: reqID, Final: true, Streams: 2}))
			return time.Now(), nil
		}},
		{"start and half a data header", func(c *hostile, _ network.Stream, reqID uint64) (time.Time, func()) {
			f := dataFrame(0, 0, 1<<20, sum[:])
			c.write(c.stream(), frame(wire.TypeStart, &wire.Start{ReqID: reqID}), f[:len(f)/2])
			return time.Now(), nil
		}},
		{"start and half a chunk", func(c *hostile, _ network.Stream, reqID uint64) (time.Time, func()) {
			c.write(c.stream(), frame(wire.TypeStart, &wire.Start{ReqID: reqID}), dataFrame(0, 0, 1<<20, sum[:]), body[:len(body)/2])
			return time.Now(), nil
		}},
		{"repeats a confirmed chunk", func(c *hostile, ctrl network.Stream, reqID uint64) (time.Time, func()) {
			d := c.stream()
			c.write(d, frame(wire.TypeStart, &wire.Start{ReqID: reqID}), dataFrame(0, 0, 1<<20, sum[:]), body)
			last := time.Now()
			hxConfirmed(c.t, c, ctrl, 1<<20, 10*time.Second)
			return last, hxDrip(d, dataFrame(0, 0, 1<<20, sum[:]), body)
		}},
		{"sends chunks that fail their hash", func(c *hostile, _ network.Stream, reqID uint64) (time.Time, func()) {
			d := c.stream()
			c.write(d, frame(wire.TypeStart, &wire.Start{ReqID: reqID}))
			return time.Now(), hxDrip(d, dataFrame(0, 0, 1<<20, bad), body)
		}},
	}
	var lats []string
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newHostile(t, addr)
			reqID := uint64(200 + i)
			ctrl := c.stream()
			c.write(ctrl, offerFrame(reqID, 1<<20, wire.Entry{Path: fmt.Sprintf("silent-%d.bin", i), Size: 4 << 20, Mode: 0o644}))
			last := time.Now()
			m, err := c.answer(ctrl, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.(*wire.Accept); !ok {
				t.Fatalf("want accept, got %v: %+v", m.Type(), m)
			}
			var stop func()
			if tc.stall != nil {
				last, stop = tc.stall(c, ctrl, reqID)
			}
			ev, ok := hxTryNextFrom(recv, "failed", c.h.ID().String(), idle+10*time.Second)
			if !ok {
				t.Errorf("the transfer is still running %.1fs after its last progress, idle timeout %v", time.Since(last).Seconds(), idle)
				lats = append(lats, fmt.Sprintf("%s: none within %.0fs", tc.name, time.Since(last).Seconds()))
				if stop == nil {
					t.FailNow()
				}
				stop()
				stop = nil
				ev = hxNextFrom(t, recv, "failed", c.h.ID().String(), idle+20*time.Second)
				t.Logf("once the peer stopped sending, the transfer failed %.2fs after the last progress: code %d, %q",
					time.Since(last).Seconds(), ev.num("code"), ev.str("error"))
			} else {
				lat := time.Since(last)
				lats = append(lats, fmt.Sprintf("%s: %.2fs", tc.name, lat.Seconds()))
				t.Logf("failed event %.2fs after the last byte sent: code %d, %q", lat.Seconds(), ev.num("code"), ev.str("error"))
				if lat > idle+5*time.Second {
					t.Errorf("the transfer ended %.2fs after the last byte, idle timeout %v", lat.Seconds(), idle)
				}
			}
			if stop != nil {
				stop()
			}
			if code := wire.Code(ev.num("code")); code != wire.CodeTimeout {
				t.Errorf("failed with code %d (%v), want %d (%v)", code, code, wire.CodeTimeout, wire.CodeTimeout)
			}
			c.wantCode(ctrl, wire.CodeTimeout)
			hxNormalSend(t, addr, w.target, fmt.Sprintf("after-silent-%d.bin", i))
		})
	}
	t.Logf("failed event after the last progressing byte, idle timeout %v: %s", idle, strings.Join(lats, "; "))
	hxAlive(t, recv)
	w.intact(t)
}

// hxDrip writes frames to s every 250 ms, until the function it returns
// is called or a write fails.
func hxDrip(s network.Stream, frames ...[]byte) func() {
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, f := range frames {
				if _, err := s.Write(f); err != nil {
					return
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(stop); <-stopped }
}

// hxTryNextFrom is hxNextFrom that reports a timeout instead of failing.
func hxTryNextFrom(p *proc, name, id string, timeout time.Duration) (event, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				return nil, false
			}
			if e.str("event") == name && e.str("peer") == id {
				return e, true
			}
		case <-deadline:
			return nil, false
		}
	}
}

// hxNode is one file or directory as found, links not followed.
type hxNode struct {
	mode  fs.FileMode
	size  int64
	mtime int64
	sum   [32]byte
	link  string
	ino   uint64
}

// hxSnap records every name below root with its kind, size, mtime and
// content.
func hxSnap(t *testing.T, root string) map[string]hxNode {
	t.Helper()
	out := map[string]hxNode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		n := hxNode{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n.ino = st.Ino
		}
		switch {
		case fi.Mode().IsRegular():
			n.sum = fileHash(t, p)
		case fi.Mode()&fs.ModeSymlink != 0:
			n.link, _ = os.Readlink(p)
		case fi.IsDir():
			n.size, n.mtime = 0, 0 // a directory's own entries are compared instead
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hxSameSnap fails t if anything below the snapshot's root changed.
func hxSameSnap(t *testing.T, what string, before, after map[string]hxNode) {
	t.Helper()
	for name, b := range before {
		a, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s: %s disappeared", what, name)
		case a.mode != b.mode || a.link != b.link:
			t.Errorf("%s: %s changed kind: %v %q, was %v %q", what, name, a.mode, a.link, b.mode, b.link)
		case a.sum != b.sum || a.size != b.size:
			t.Errorf("%s: %s changed content", what, name)
		case a.mtime != b.mtime:
			t.Errorf("%s: %s changed mtime: %v, was %v", what, name, time.Unix(0, a.mtime), time.Unix(0, b.mtime))
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s: %s appeared", what, name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// hxCopy copies a file's bytes.
func hxCopy(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func hxMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHxPlantedLinks interrupts a real transfer so that the receiver
// keeps its temporary file and resume state, stops the receiver, and
// replaces the temporary file, the state or the staging directory with a
// link to something outside the target directory, holding the genuine
// bytes so that content checks alone would pass. The re-run must leave
// everything outside the target as it was, byte for byte and mtime, and
// either place the correct file or fail with a reason, after which
// removing the planted link lets it complete.
func TestHxPlantedLinks(t *testing.T) {
	hxDeadline(t, 6*time.Minute)
	const size = 256 << 20
	src := filepath.Join(t.TempDir(), "f.bin")
	writeRandom(t, src, size, 23)
	want := fileHash(t, src)

	stageOf := func(w world) string { return filepath.Join(w.target, ".dshare") }
	// Each plant replaces one entry and returns the name to remove to undo
	// it.
	cases := []struct {
		name  string
		plant func(t *testing.T, w world, part, state string) string
	}{
		{"part/hard link", func(t *testing.T, w world, part, _ string) string {
			victim := filepath.Join(w.outside, "part.copy")
			hxCopy(t, part, victim)
			hxMust(t, os.Remove(part))
			hxMust(t, os.Link(victim, part))
			return part
		}},
		{"part/symlink", func(t *testing.T, w world, part, _ string) string {
			victim := filepath.Join(w.outside, "part.copy")
			hxCopy(t, part, victim)
			hxMust(t, os.Remove(part))
			hxMust(t, os.Symlink(victim, part))
			return part
		}},
		{"state/hard link", func(t *testing.T, w world, _, state string) string {
			victim := filepath.Join(w.outside, "state.copy")
			hxCopy(t, state, victim)
			hxMust(t, os.Remove(state))
			hxMust(t, os.Link(victim, state))
			return state
		}},
		{"state/symlink", func(t *testing.T, w world, _, state string) string {
			victim := filepath.Join(w.outside, "state.copy")
			hxCopy(t, state, victim)
			hxMust(t, os.Remove(state))
			hxMust(t, os.Symlink(victim, state))
			return state
		}},
		{"stage/hard link to an outside file", func(t *testing.T, w world, _, _ string) string {
			hxMust(t, os.RemoveAll(stageOf(w)))
			hxMust(t, os.Link(filepath.Join(w.outside, "secret.txt"), stageOf(w)))
			return stageOf(w)
		}},
		{"stage/symlink to an outside file", func(t *testing.T, w world, _, _ string) string {
			hxMust(t, os.RemoveAll(stageOf(w)))
			hxMust(t, os.Symlink(filepath.Join(w.outside, "secret.txt"), stageOf(w)))
			return stageOf(w)
		}},
		{"stage/symlink to its own contents moved outside", func(t *testing.T, w world, _, _ string) string {
			victim := filepath.Join(w.outside, "stage")
			hxMust(t, os.Rename(stageOf(w), victim))
			hxMust(t, os.Symlink(victim, stageOf(w)))
			return stageOf(w)
		}},
	}
	var outcomes []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			hr, hs := t.TempDir(), t.TempDir()
			recv, addr := receiver(t, hr, w.target, "--yes")
			args := []string{"send", "--home", hs, "--offline", "--json", "--retry-for", "0", src, addr}
			confirmed := sendAndKill(t, args, 1)
			_ = recv.cmd.Process.Signal(syscall.SIGINT)
			if err := recv.wait(t, 30*time.Second); err != nil {
				t.Logf("receiver exit after SIGINT: %v", err)
			}
			parts := partFiles(t, w.target)
			states, _ := filepath.Glob(filepath.Join(stageOf(w), "*.state"))
			if len(parts) != 1 || len(states) != 1 {
				t.Fatalf("setup: sender killed at %d bytes confirmed; want one .part and one .state, found %q and %q", confirmed, parts, states)
			}
			if _, err := os.Lstat(filepath.Join(w.target, "f.bin")); err == nil {
				t.Fatal("setup: f.bin was placed before the kill")
			}
			planted := tc.plant(t, w, parts[0], states[0])
			before := hxSnap(t, w.outside)

			recv2, addr2 := receiver(t, hr, w.target, "--yes")
			args[len(args)-1] = addr2
			out, errOut, err := dshare(t, 3*time.Minute, args...)
			hxSameSnap(t, "outside after the re-run", before, hxSnap(t, w.outside))
			outcome := ""
			if err == nil {
				done := lastEvent(t, out)
				outcome = fmt.Sprintf("completed (sent %d, skipped %d)", done.num("sent"), done.num("skipped"))
			} else {
				// A refusal must say why, on both sides, and place nothing.
				ev := hxNextOf(t, recv2, 10*time.Second, "rejected", "failed")
				if ev.str("error") == "" || strings.TrimSpace(errOut) == "" {
					t.Errorf("a refusal without a reason: receiver %q, sender %q", ev.str("error"), errOut)
				}
				if _, err := os.Lstat(filepath.Join(w.target, "f.bin")); err == nil {
					t.Error("f.bin was placed by a transfer that failed")
				}
				outcome = fmt.Sprintf("refused, code %d: receiver %q; sender %q", ev.num("code"), ev.str("error"), strings.TrimSpace(errOut))
				hxMust(t, os.Remove(planted))
				before = hxSnap(t, w.outside)
				out, errOut, err = dshare(t, 3*time.Minute, args...)
				if err != nil {
					t.Fatalf("after removing the planted link, the send still fails: %v\n%s", err, errOut)
				}
				hxSameSnap(t, "outside after the third run", before, hxSnap(t, w.outside))
				done := lastEvent(t, out)
				outcome += fmt.Sprintf("; after removing it: completed (sent %d, skipped %d)", done.num("sent"), done.num("skipped"))
			}
			t.Log(outcome)
			outcomes = append(outcomes, tc.name+": "+outcome)
			hxPlaced(t, w, "f.bin", want)
			hxAlive(t, recv2)
		})
	}
	for _, o := range outcomes {
		t.Log(o)
	}
}

// hxPlaced asserts that name in the target is a regular file of its own
// with content want, sharing no inode with anything outside.
func hxPlaced(t *testing.T, w world, name string, want [32]byte) {
	t.Helper()
	p := filepath.Join(w.target, name)
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatalf("%s was not placed: %v", name, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || st.Nlink != 1 {
		t.Fatalf("%s is %v with %d links", name, fi.Mode(), st.Nlink)
	}
	for rel, n := range hxSnap(t, w.outside) {
		if n.ino == st.Ino && n.mode.IsRegular() {
			t.Fatalf("%s is the same file as outside/%s", name, rel)
		}
	}
	if fileHash(t, p) != want {
		t.Fatalf("%s differs from the source", name)
	}
}

// hxRSS reads a process's current resident set size.
func hxRSS(t *testing.T, pid int) int64 {
	t.Helper()
	rss, ok := procStatus(pid)["VmRSS"]
	if !ok {
		t.Fatal("no VmRSS in /proc/PID/status")
	}
	return rss
}

// hxRSSParts reads a process's resident anonymous memory and its resident
// file pages (mostly its own binary), which no Go memory limit covers.
func hxRSSParts(t *testing.T, pid int) (anon, file int64) {
	t.Helper()
	st := procStatus(pid)
	return st["RssAnon"], st["RssFile"]
}

func hxMiB(n int64) float64 { return float64(n) / (1 << 20) }

// hxMaxManifest returns the frames of an offer whose manifest is as large
// as the receiver admits (maxManifestBytes in peer/engine/offercheck.go:
// 160 MiB of entries, each costing its path plus entryCost, 112 bytes), in parts of
// one frame each, all with More set: the last part never comes.
func hxMaxManifest(t *testing.T) [][]byte {
	t.Helper()
	const maxManifest, entryCost = 160 << 20, 112
	path := strings.Repeat("m", wire.MaxBodySize-128)
	n := maxManifest / (len(path) + entryCost)
	var frames [][]byte
	for i := range n {
		o := &wire.Offer{ReqID: 1, Part: uint32(i), More: true, Entries: []wire.Entry{{Path: path, Size: 1}}}
		if i == 0 {
			o.ChunkSize, o.Files, o.Bytes = 1<<20, uint64(n), uint64(n)
		}
		f, err := wire.AppendFrame(nil, o)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	return frames
}

// hxEnding is how the receiver ended one stream.
type hxEnding struct {
	how    string // "reject CODE", "error CODE", "reset CODE", "closed", "no answer"
	reason string
	after  time.Duration // from the last byte written
}

// hxAwaitEnd reads s until the receiver ends it, skipping progress
// reports. It is safe to call from any goroutine.
func hxAwaitEnd(s network.Stream, last time.Time, timeout time.Duration) hxEnding {
	rd := wire.NewReader(s)
	_ = s.SetReadDeadline(time.Now().Add(timeout))
	for {
		m, err := rd.ReadMsg()
		e := hxEnding{after: time.Since(last)}
		var se *network.StreamError
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			e.how = "no answer"
		case errors.As(err, &se):
			e.how = fmt.Sprintf("reset %d", se.ErrorCode)
		case err != nil:
			e.how, e.reason = "closed", err.Error()
		default:
			switch m := m.(type) {
			case *wire.Progress:
				continue
			case *wire.Reject:
				e.how, e.reason = "reject "+m.Code.String(), m.Reason
			case *wire.Error:
				e.how, e.reason = "error "+m.Code.String(), m.Message
			default:
				e.how = m.Type().String()
			}
		}
		return e
	}
}

// hxTally summarizes endings: how many of each kind, with one reason.
func hxTally(ends []hxEnding) string {
	count := map[string]int{}
	reason := map[string]string{}
	var slowest time.Duration
	for _, e := range ends {
		count[e.how]++
		if reason[e.how] == "" {
			reason[e.how] = e.reason
		}
		slowest = max(slowest, e.after)
	}
	var parts []string
	for how, n := range count {
		parts = append(parts, fmt.Sprintf("%d × %s (%q)", n, how, reason[how]))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%s; last ended %.1fs after its last byte", strings.Join(parts, ", "), slowest.Seconds())
}

// hxStalledOffers opens a stream per entry of hosts, sends each the
// frames of a maximal manifest but its last part, and waits for the
// receiver to give up on all of them.
func hxStalledOffers(t *testing.T, hosts []*hostile, frames [][]byte, idle time.Duration) []hxEnding {
	t.Helper()
	streams := make([]network.Stream, len(hosts))
	for i, c := range hosts {
		streams[i] = c.stream()
	}
	ends := make([]hxEnding, len(streams))
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var werr error
			for _, f := range frames {
				if _, werr = s.Write(f); werr != nil {
					break
				}
			}
			ends[i] = hxAwaitEnd(s, time.Now(), idle+60*time.Second)
			if werr != nil {
				ends[i].how = "refused mid-write, then " + ends[i].how
			}
		}()
	}
	wg.Wait()
	return ends
}

// TestHxMemory attacks one receiver's memory in four ways and after each
// checks its peak RSS against 256 MiB and that a normal send still works:
// (a) six maximal offer manifests at once from one peer, (b) one each
// from ten peers, (c) 400 streams that announce 1 MiB and 4 MiB bodies and
// send three quarters of them, (d) a 1 GiB sparse resume state planted
// for a real interrupted transfer, then the resume.
func TestHxMemory(t *testing.T) {
	hxDeadline(t, 9*time.Minute)
	const idle = 8 * time.Second
	const limit = 256 << 20
	seed := hxSeed(t)
	w := newWorld(t)
	// Each case gets a receiver of its own, so that its peak is its own.
	var recv *proc
	var addr string
	var pid int
	manifest := hxMaxManifest(t)
	t.Logf("maximal manifest: %d parts of %d bytes", len(manifest), len(manifest[0]))

	// Each case's peak is read from VmHWM, reset when the case begins.
	var report []string
	measure := func(name, slug string, attack func(t *testing.T) string) {
		t.Run(name, func(t *testing.T) {
			recv, addr = receiver(t, t.TempDir(), w.target, "--yes", "--idle-timeout", idle.String())
			pid = recv.cmd.Process.Pid
			base := hxRSS(t, pid)
			what := attack(t)
			hxAlive(t, recv)
			peak := peakRSS(t, pid)
			anon, file := hxRSSParts(t, pid)
			line := fmt.Sprintf("%s: peak RSS %.1f MiB (RSS %.1f MiB when the case began; now anonymous %.1f MiB, file pages %.1f MiB); %s",
				name, hxMiB(peak), hxMiB(base), hxMiB(anon), hxMiB(file), what)
			t.Log(line)
			report = append(report, line)
			if peak > limit {
				t.Errorf("receiver peak RSS %.1f MiB, over 256 MiB", hxMiB(peak))
			}
			hxNormalSend(t, addr, w.target, "normal-"+slug+".bin")
		})
	}

	// The cases run from the one expected to cost least to the one
	// expected to cost most, so that what one leaves behind weighs on
	// the later ones as little as possible.
	measure("d/1 GiB sparse state for an interrupted transfer", "d", func(t *testing.T) string {
		const size = 192 << 20
		src := filepath.Join(t.TempDir(), "resume.bin")
		writeRandom(t, src, size, seed)
		hs := t.TempDir()
		id := hxPeerID(t, hs)
		args := []string{"send", "--home", hs, "--offline", "--json", "--retry-for", "0", src, addr}
		confirmed := sendAndKill(t, args, 1)
		// The receiver lets go of the files once the killed sender's
		// transfer times out.
		ev := hxNextFrom(t, recv, "failed", id, idle+30*time.Second)
		t.Logf("the killed sender's transfer ended: code %d, %s", ev.num("code"), ev.str("error"))
		states, _ := filepath.Glob(filepath.Join(w.target, ".dshare", "*.state"))
		if len(states) != 1 {
			t.Fatalf("setup: sender killed at %d bytes confirmed; want one .state, found %q", confirmed, states)
		}
		if err := os.Truncate(states[0], 1<<30); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := dshare(t, 3*time.Minute, args...)
		if err != nil {
			t.Fatalf("the resumed send failed: %v\n%s", err, errOut)
		}
		if fileHash(t, src) != fileHash(t, filepath.Join(w.target, "resume.bin")) {
			t.Fatal("resume.bin differs from its source")
		}
		done := lastEvent(t, out)
		return fmt.Sprintf("killed at %d confirmed; the resumed run sent %d, skipped %d", confirmed, done.num("sent"), done.num("skipped"))
	})

	measure("c/400 streams announcing bodies they never finish", "c", func(t *testing.T) string {
		return hxPartialBodies(t, addr, idle)
	})

	measure("a/6 maximal offers from one peer", "a", func(t *testing.T) string {
		c := newHostile(t, addr)
		ends := hxStalledOffers(t, []*hostile{c, c, c, c, c, c}, manifest, idle)
		return "streams: " + hxTally(ends)
	})

	measure("b/maximal offers from 10 peers", "b", func(t *testing.T) string {
		var hosts []*hostile
		for range 10 {
			hosts = append(hosts, newHostile(t, addr))
		}
		ends := hxStalledOffers(t, hosts, manifest, idle)
		return "streams: " + hxTally(ends)
	})

	for _, l := range report {
		t.Log(l)
	}
	w.intact(t)
}

// hxPartialBodies opens 400 streams from 30 peers. Half send an Offer
// header announcing a body of wire.MaxBodySize and three quarters of it;
// half are data streams of accepted transfers with 4 MiB chunks that send
// a Data header and three quarters of its payload. All then stall until
// the receiver ends them. Each peer opens and fills its streams at once,
// all peers together, so that they are all held at the same time.
func hxPartialBodies(t *testing.T, addr string, idle time.Duration) string {
	t.Helper()
	const offerPeers, offerStreams = 5, 40
	const dataPeers, dataStreams = 25, 8
	const chunk = 4 << 20

	offerHead := binary.BigEndian.AppendUint32([]byte{byte(wire.TypeOffer)}, wire.MaxBodySize)
	offerBody := make([]byte, wire.MaxBodySize*3/4)
	payload := make([]byte, chunk*3/4)
	hash := make([]byte, wire.HashSize)

	var hosts []*hostile
	for range offerPeers + dataPeers {
		hosts = append(hosts, newHostile(t, addr))
	}
	// The data peers' transfers are accepted first; their streams follow
	// well within the idle timeout.
	type plan struct {
		c      *hostile
		n      int
		frames func(k int) [][]byte
		kind   int // 0 offer, 1 data
	}
	var plans []plan
	var ctrls []network.Stream
	for range offerPeers {
		plans = append(plans, plan{c: hosts[len(plans)], n: offerStreams, frames: func(int) [][]byte { return [][]byte{offerHead, offerBody} }})
	}
	for i, c := range hosts[offerPeers:] {
		reqID := uint64(1000 + i)
		ctrl := c.stream()
		c.write(ctrl, offerFrame(reqID, chunk, wire.Entry{Path: fmt.Sprintf("partial-%d.bin", i), Size: 16 * chunk, Mode: 0o644}))
		m, err := c.answer(ctrl, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(*wire.Accept); !ok {
			t.Fatalf("want accept, got %v: %+v", m.Type(), m)
		}
		delete(c.readers, ctrl) // hxAwaitEnd reads it from here on
		ctrls = append(ctrls, ctrl)
		plans = append(plans, plan{c: c, n: dataStreams, kind: 1, frames: func(k int) [][]byte {
			return [][]byte{frame(wire.TypeStart, &wire.Start{ReqID: reqID}), dataFrame(0, uint64(k)*chunk, chunk, hash), payload}
		}})
	}

	var mu sync.Mutex
	ends := [3][]hxEnding{} // offer, data, control streams
	record := func(kind int, e hxEnding) {
		mu.Lock()
		ends[kind] = append(ends[kind], e)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, s := range ctrls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			record(2, hxAwaitEnd(s, time.Now(), idle+60*time.Second))
		}()
	}
	for _, p := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range p.n {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				s, err := p.c.h.NewStream(ctx, p.c.target.ID, dpeer.ProtocolID)
				cancel()
				if err != nil {
					record(p.kind, hxEnding{how: "refused at open", reason: err.Error()})
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer s.Reset()
					var werr error
					for _, f := range p.frames(k) {
						if _, werr = s.Write(f); werr != nil {
							break
						}
					}
					e := hxAwaitEnd(s, time.Now(), idle+60*time.Second)
					if werr != nil {
						// Refused while still writing: the answer may
						// have come before the reset.
						e.how = "refused mid-write, then " + e.how
					}
					record(p.kind, e)
				}()
			}
		}()
	}
	wg.Wait()
	for _, e := range slices.Concat(ends[:]...) {
		if strings.HasSuffix(e.how, "no answer") {
			t.Errorf("a stream was not ended by the receiver within %v", idle+60*time.Second)
			break
		}
	}
	return fmt.Sprintf("%d offer streams: %s. %d data streams: %s. %d control streams: %s",
		len(ends[0]), hxTally(ends[0]), len(ends[1]), hxTally(ends[1]), len(ends[2]), hxTally(ends[2]))
}
