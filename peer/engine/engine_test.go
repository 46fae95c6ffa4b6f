package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dshare/dshare/chunker"
	"github.com/dshare/dshare/peer/source"
	"github.com/dshare/dshare/wire"
)

const testChunk = 64 << 10

// testCtx is a context that ends with the test's deadline.
func testCtx(t *testing.T) context.Context {
	d := 60 * time.Second
	if dl, ok := t.Deadline(); ok && time.Until(dl) < d {
		d = time.Until(dl) - time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// events collects a receiver's events.
type events struct {
	mu  sync.Mutex
	all []Event
	ch  chan Event
}

func (e *events) notify(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	select {
	case e.ch <- ev:
	default:
	}
}

// waitKind waits for an event of kind.
func (e *events) waitKind(t *testing.T, ctx context.Context, kind EventKind) Event {
	t.Helper()
	for {
		select {
		case ev := <-e.ch:
			if ev.Kind == kind {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no event %d: %v", kind, ctx.Err())
		}
	}
}

// startReceiver runs a Receiver on a fresh directory until the test ends.
func startReceiver(t *testing.T, l Limits) (*Receiver, *events) {
	t.Helper()
	ev := &events{ch: make(chan Event, 4096)}
	r := &Receiver{Dir: t.TempDir(), Limits: l, Journal: filepath.Join(t.TempDir(), "journal"), Notify: ev.notify}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r, ev
}

func link(t *testing.T, ctx context.Context, r *Receiver, peer string) *memLink {
	l := &memLink{ctx: ctx, r: r, peer: peer}
	t.Cleanup(func() { l.Drop(); l.wg.Wait() })
	return l
}

// writeTree writes files of the given sizes, seeded, and an empty
// directory, and returns the tree's root.
func writeTree(t *testing.T, seed uint64, sizes ...int) string {
	t.Helper()
	t.Logf("tree seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	root := filepath.Join(t.TempDir(), "tree")
	for i, n := range sizes {
		p := filepath.Join(root, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "empty", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// sameTree fails unless dir holds exactly what src holds, below base.
func sameTree(t *testing.T, src, dir string) {
	t.Helper()
	want := map[string]string{}
	walk := func(root string, into map[string]string) {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() {
				into[rel] = "dir"
				return nil
			}
			b, err := os.ReadFile(p)
			into[rel] = string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	walk(src, want)
	got := map[string]string{}
	walk(filepath.Join(dir, filepath.Base(src)), got)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: missing or different", k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected", k)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, ".dshare")); err == nil {
		t.Error("the staging directory is left behind")
	}
}

func manifest(t *testing.T, paths ...string) *source.Manifest {
	m, err := source.BuildManifest(paths)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEngineSendAndResendHeld(t *testing.T) {
	ctx := testCtx(t)
	r, ev := startReceiver(t, Limits{})
	src := writeTree(t, 1, 0, 1, testChunk, testChunk+1, 5*testChunk+7, 300<<10)
	m := manifest(t, src)
	opts := SendOptions{ChunkSize: testChunk, Streams: 3}
	res, err := Send(ctx, link(t, ctx, r, "alice"), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	ev.waitKind(t, ctx, EventDone)
	sameTree(t, src, r.Dir)
	files, bytes := m.Files()
	if res.Files != files || res.Bytes != bytes || res.Sent != bytes || res.Skipped != 0 {
		t.Fatalf("first send: %+v, want %d files, %d bytes all sent", res, files, bytes)
	}

	// The same offer again: every file is held, nothing is sent or
	// duplicated.
	res, err = Send(ctx, link(t, ctx, r, "alice"), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.SkippedFiles != files || res.Sent != 0 || res.Skipped != bytes {
		t.Fatalf("second send: %+v, want all %d files skipped", res, files)
	}
	sameTree(t, src, r.Dir)

	// Another sender with the same content: present, not copied.
	res, err = Send(ctx, link(t, ctx, r, "bob"), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.SkippedFiles != files || res.Sent != 0 {
		t.Fatalf("send from another peer: %+v, want all %d files present", res, files)
	}
	sameTree(t, src, r.Dir)
}

// hostile drives the protocol by hand over in-memory streams.
type hostile struct {
	t    *testing.T
	ctx  context.Context
	link *memLink
}

func (h *hostile) open() (Stream, *wire.Reader) {
	h.t.Helper()
	s, err := h.link.Open(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return s, wire.NewReader(s)
}

func (h *hostile) write(s Stream, msgs ...wire.Message) {
	h.t.Helper()
	for _, m := range msgs {
		if err := wire.WriteMsg(s, m); err != nil {
			h.t.Fatal(err)
		}
	}
}

// offer sends an offer of one file and returns the control stream once
// it is accepted.
func (h *hostile) offer(reqID uint64, path string, size uint64) (Stream, *wire.Reader) {
	h.t.Helper()
	ctrl, rd := h.open()
	h.write(ctrl, &wire.Offer{ReqID: reqID, ChunkSize: testChunk, Files: 1, Bytes: size,
		Entries: []wire.Entry{{Path: path, Size: size, Mode: 0o644, MTime: 1}}})
	m, err := rd.ReadMsg()
	if err != nil {
		h.t.Fatal(err)
	}
	if _, ok := m.(*wire.Accept); !ok {
		h.t.Fatalf("offer answered with %v", m.Type())
	}
	return ctrl, rd
}

// A wrong whole-file hash while duplicate chunks keep arriving on several
// streams: the file never appears, the transfer fails with a hash
// mismatch, and -race sees the store's concurrent paths.
func TestEngineHashMismatchWithDuplicateChunks(t *testing.T) {
	ctx := testCtx(t)
	r, ev := startReceiver(t, Limits{})
	const chunks = 6
	data := bytes.Repeat([]byte("0123456789abcdef"), chunks*testChunk/16)
	h := &hostile{t: t, ctx: ctx, link: link(t, ctx, r, "mallory")}
	_ = h.link.Connect(ctx)
	ctrl, _ := h.offer(7, "f.bin", uint64(len(data)))

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := h.link.Open(ctx)
			if err != nil {
				return
			}
			defer s.Close()
			if wire.WriteMsg(s, &wire.Start{ReqID: 7}) != nil {
				return
			}
			for round := range 3 { // every chunk three times per stream
				for c := range chunks {
					c := (c + w + round) % chunks
					p := data[c*testChunk : (c+1)*testChunk]
					sum := chunker.Hash(p)
					if wire.WriteData(s, &wire.Data{File: 0, Offset: uint64(c * testChunk), Hash: sum[:]}, p) != nil {
						return
					}
				}
			}
		}()
	}
	wrong := chunker.Hash([]byte("not the root"))
	h.write(ctrl, &wire.Done{ReqID: 7, Sums: []wire.FileSum{{File: 0, Sum: wrong[:]}}})
	wg.Wait()
	h.write(ctrl, &wire.Done{ReqID: 7, Final: true, Streams: 4})
	failed := ev.waitKind(t, ctx, EventFailed)
	if !errors.Is(failed.Err, wire.ErrHashMismatch) {
		t.Fatalf("failed with %v, want a hash mismatch", failed.Err)
	}
	if _, err := os.Lstat(filepath.Join(r.Dir, "f.bin")); err == nil {
		t.Fatal("a file that failed verification was placed")
	}
}

// Two senders offer different content under one name at once: each gets
// its own file, and each is told the name its content is under.
func TestEngineConcurrentSameName(t *testing.T) {
	ctx := testCtx(t)
	r, _ := startReceiver(t, Limits{})
	var srcs [2]string
	for i := range srcs {
		dir := t.TempDir()
		srcs[i] = filepath.Join(dir, "same.bin")
		b := bytes.Repeat([]byte{byte('a' + i)}, 20*testChunk+i)
		if err := os.WriteFile(srcs[i], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var results [2]*Result
	var errs [2]error
	for i, peer := range []string{"alice", "bob"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Send(ctx, link(t, ctx, r, peer), manifest(t, srcs[i]), SendOptions{ChunkSize: testChunk, Streams: 2})
		}()
	}
	wg.Wait()
	names := map[string]bool{}
	for i := range srcs {
		if errs[i] != nil {
			t.Fatalf("sender %d: %v", i, errs[i])
		}
		name := "same.bin"
		if n, ok := results[i].Renamed["same.bin"]; ok {
			name = n
		}
		names[name] = true
		got, err := os.ReadFile(filepath.Join(r.Dir, name))
		want, _ := os.ReadFile(srcs[i])
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("sender %d: %s does not hold its content (%v)", i, name, err)
		}
	}
	if len(names) != 2 {
		t.Fatalf("both senders report %v", names)
	}
}

// A sender that goes silent after its offer was accepted is dropped
// within the idle timeout, with a timeout error on both sides.
func TestEngineSilentSender(t *testing.T) {
	ctx := testCtx(t)
	const idle = 300 * time.Millisecond
	r, ev := startReceiver(t, Limits{IdleTimeout: idle})
	h := &hostile{t: t, ctx: ctx, link: link(t, ctx, r, "mallory")}
	_ = h.link.Connect(ctx)
	_, rd := h.offer(9, "f.bin", 3*testChunk)
	start := time.Now()
	failed := ev.waitKind(t, ctx, EventFailed)
	took := time.Since(start)
	if !errors.Is(failed.Err, wire.ErrTimeout) {
		t.Fatalf("failed with %v, want a timeout", failed.Err)
	}
	if took > idle+time.Second {
		t.Fatalf("dropped after %v, idle timeout %v", took, idle)
	}
	for {
		m, err := rd.ReadMsg()
		if err != nil {
			t.Fatalf("the sender was not told: %v", err)
		}
		if e, ok := m.(*wire.Error); ok {
			if !errors.Is(e.Err(), wire.ErrTimeout) {
				t.Fatalf("sender told %v", e.Err())
			}
			break
		}
	}
}

// A sender killed mid-transfer neither reads nor acknowledges: the
// receiver's next write to it blocks on flow control. The same sender's
// next session must still be answered at once, not after the old
// session's idle timeout.
func TestEngineSupersedeFrozenSender(t *testing.T) {
	ctx := testCtx(t)
	r, ev := startReceiver(t, Limits{IdleTimeout: 10 * time.Minute})
	old := link(t, ctx, r, "alice")
	old.window = 1
	_ = old.Connect(ctx)
	h := &hostile{t: t, ctx: ctx, link: old}
	src := writeTree(t, 7, 3*testChunk)
	ctrl, _ := h.offer(1, "tree/d0/f0.bin", 3*testChunk)
	data, _ := h.open()
	chunk := bytes.Repeat([]byte{1}, testChunk)
	sum := chunker.Hash(chunk)
	h.write(data, &wire.Start{ReqID: 1})
	h.write(data, &wire.Data{File: 0, Offset: 0, Length: testChunk, Hash: sum[:]})
	if _, err := data.Write(chunk); err != nil {
		t.Fatal(err)
	}
	// The receiver confirms the chunk; nobody reads it.
	if err := ctrl.(*memStream).waitUnread(ctx); err != nil {
		t.Fatalf("the receiver never confirmed the chunk: %v", err)
	}

	if _, err := Send(ctx, link(t, ctx, r, "alice"), manifest(t, src), SendOptions{ChunkSize: testChunk}); err != nil {
		t.Fatalf("the next session of a frozen sender: %v", err)
	}
	ev.waitKind(t, ctx, EventDone)
	sameTree(t, src, r.Dir)
}

// Two sends of different files from the same peer at once, from two
// terminals say: neither supersedes the other.
func TestEngineSamePeerTwoSends(t *testing.T) {
	ctx := testCtx(t)
	r, ev := startReceiver(t, Limits{})
	var srcs [2]string
	for i := range srcs {
		srcs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("set%d", i))
		if err := os.Rename(writeTree(t, uint64(10+i), 40*testChunk, testChunk), srcs[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var errs [2]error
	for i := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Send(ctx, link(t, ctx, r, "alice"), manifest(t, srcs[i]), SendOptions{ChunkSize: testChunk, Streams: 2})
		}()
	}
	wg.Wait()
	ev.waitKind(t, ctx, EventDone)
	ev.waitKind(t, ctx, EventDone)
	for i, src := range srcs {
		if errs[i] != nil {
			t.Fatalf("send %d: %v", i, errs[i])
		}
		sameTree(t, src, r.Dir)
	}
}

// When the memory budget is spent, a data stream is refused as busy
// instead of allocating its chunk buffer.
func TestEngineMemoryBudget(t *testing.T) {
	ctx := testCtx(t)
	r, _ := startReceiver(t, Limits{})
	h := &hostile{t: t, ctx: ctx, link: link(t, ctx, r, "mallory")}
	_ = h.link.Connect(ctx)
	h.offer(3, "f.bin", 2*testChunk)
	// Spend the budget but for a data stream's reader and first frame.
	spare := int64(readBufSize + 4<<10)
	if err := r.budget.reserve(r.Limits.Memory-r.budget.Used()-spare, "test"); err != nil {
		t.Fatal(err)
	}
	s, rd := h.open()
	h.write(s, &wire.Start{ReqID: 3})
	m, err := rd.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := m.(*wire.Error); !ok || !errors.Is(e.Err(), wire.ErrBusy) {
		t.Fatalf("data stream over budget answered %v", m)
	}
	// A stream that cannot even get its reader is refused too.
	if err := r.budget.reserve(spare, "test"); err != nil {
		t.Fatal(err)
	}
	s2, rd2 := h.open()
	h.write(s2, &wire.Start{ReqID: 3})
	m, err = rd2.ReadMsg()
	if err != nil {
		t.Fatalf("stream over budget: %v", err)
	}
	if e, ok := m.(*wire.Error); !ok || !errors.Is(e.Err(), wire.ErrBusy) {
		t.Fatalf("stream over budget answered %v", m)
	}
}

// A sender's display name reaches Decide escaped; one too long is dropped.
func TestEngineSenderName(t *testing.T) {
	ctx := testCtx(t)
	for _, c := range []struct{ name, want string }{
		{"laptop", "laptop"},
		{"lap\x1b[2Jtop", `lap\u001b[2Jtop`},
		{string(bytes.Repeat([]byte{'x'}, MaxNameLen+1)), ""},
	} {
		ev := &events{ch: make(chan Event, 64)}
		got := make(chan string, 1)
		r := &Receiver{Dir: t.TempDir(), Notify: ev.notify, Decide: func(_ context.Context, o *Offer) error {
			got <- o.Name
			return nil
		}}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		src := writeTree(t, 3, 10)
		if _, err := Send(ctx, link(t, ctx, r, "alice"), manifest(t, src), SendOptions{ChunkSize: testChunk, Name: c.name}); err != nil {
			t.Fatal(err)
		}
		if n := <-got; n != c.want {
			t.Errorf("name %q reached Decide as %q, want %q", c.name, n, c.want)
		}
		r.Stop()
	}
}

// A transfer admits twice MaxDataStreams data streams, room for those a
// sender has closed while they still drain, and refuses one more.
func TestEngineDataStreamLimit(t *testing.T) {
	ctx := testCtx(t)
	r, _ := startReceiver(t, Limits{})
	h := &hostile{t: t, ctx: ctx, link: link(t, ctx, r, "mallory")}
	_ = h.link.Connect(ctx)
	h.offer(3, "f.bin", 2*testChunk)
	for range 2 * MaxDataStreams {
		s, _ := h.open()
		h.write(s, &wire.Start{ReqID: 3})
	}
	// The streams above are taken in as they come; the next one finds
	// them all, once the receiver has counted them.
	for {
		r.mu.Lock()
		var n int
		for _, tr := range r.transfers {
			tr.mu.Lock()
			n = tr.streams
			tr.mu.Unlock()
		}
		r.mu.Unlock()
		if n == 2*MaxDataStreams {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the receiver took in %d data streams of %d", n, 2*MaxDataStreams)
		case <-time.After(time.Millisecond):
		}
	}
	s, rd := h.open()
	h.write(s, &wire.Start{ReqID: 3})
	m, err := rd.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := m.(*wire.Error); !ok || !errors.Is(e.Err(), wire.ErrLimit) {
		t.Fatalf("one data stream too many answered %v", m)
	}
}

// What the sender hears of a local failure carries its reason, never the
// receiver's paths.
func TestForPeerHidesLocalDetails(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("write /home/alice/in/.dshare/p-1: %w", syscall.EIO),
		storageErr(fmt.Errorf("open /home/alice/in/f.bin: %w", fs.ErrPermission)),
	} {
		m := forPeer(err)
		if strings.Contains(m.Message, "/home") || m.Code != wire.CodeOf(err) {
			t.Errorf("%v: the sender is told %d %q", err, m.Code, m.Message)
		}
	}
	if m := forPeer(fmt.Errorf("%w: f.bin is 3 bytes", wire.ErrProtocol)); !strings.Contains(m.Message, "f.bin is 3 bytes") {
		t.Errorf("a protocol error is told as %q", m.Message)
	}
}
