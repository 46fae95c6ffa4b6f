package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dshare/dshare/peer/source"
	"github.com/dshare/dshare/wire"
)

// shareFixture is a sharer of one folder, with one receiver per getter
// peer that its pushes go to, all over in-memory pipes.
type shareFixture struct {
	t     *testing.T
	ctx   context.Context
	s     *Sharer
	src   string
	mu    sync.Mutex
	recvs map[string]*Receiver
	evs   map[string]*events
	gate  chan struct{} // if set, each push waits for a value
	order []string      // peers in the order their pushes began
}

func newShareFixture(t *testing.T, maxActive int, sizes ...int) *shareFixture {
	ctx := testCtx(t)
	src := writeTree(t, 11, sizes...)
	root, err := os.OpenRoot(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Close() })
	f := &shareFixture{t: t, ctx: ctx, src: src, recvs: map[string]*Receiver{}, evs: map[string]*events{}}
	f.s = &Sharer{Root: root, Secret: []byte("open sesame"), MaxActive: maxActive, Send: f.send}
	return f
}

func (f *shareFixture) receiver(peer string) (*Receiver, *events) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.recvs[peer]; ok {
		return r, f.evs[peer]
	}
	r, ev := startReceiver(f.t, Limits{})
	f.recvs[peer], f.evs[peer] = r, ev
	return r, ev
}

func (f *shareFixture) send(ctx context.Context, peer string, m *source.Manifest, opts SendOptions) (*Result, error) {
	f.mu.Lock()
	f.order = append(f.order, peer)
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r, _ := f.receiver(peer)
	return Send(ctx, link(f.t, f.ctx, r, "sharer"), m, opts)
}

// get runs one getter's get to its end over a pipe.
func (f *shareFixture) get(peer string, g *wire.Get, onSleep func(int)) error {
	a, b := memPipe(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.s.Handle(f.ctx, b, peer)
	}()
	err := Get(f.ctx, a, g, onSleep, nil)
	<-done
	return err
}

func TestShareGetAndList(t *testing.T) {
	f := newShareFixture(t, 2, 100_000, 3*testChunk+5, 0)
	// Hidden files keep their dot, beside a namesake without one.
	for _, name := range []string{".env", "env", ".config/x"} {
		p := filepath.Join(f.src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.get("p1", &wire.Get{ReqID: 1, Secret: []byte("open sesame")}, nil); err != nil {
		t.Fatal(err)
	}
	r, ev := f.receiver("p1")
	ev.waitKind(t, f.ctx, EventDone)
	// The whole folder: its top-level entries, under their own names.
	for _, d := range []string{"d0", "d1", "d2", "empty", ".config"} {
		sameTree(t, filepath.Join(f.src, d), r.Dir)
	}
	for _, name := range []string{".env", "env"} {
		if b, err := os.ReadFile(filepath.Join(r.Dir, name)); err != nil || string(b) != name {
			t.Errorf("%s arrived as %q: %v", name, b, err)
		}
	}

	a, b := memPipe(0)
	go f.s.Handle(f.ctx, b, "p2")
	entries, err := List(f.ctx, a, &wire.Get{ReqID: 2, Paths: []string{"d1"}, Secret: []byte("open sesame")})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Path != "d1" || !entries[0].Dir || entries[1].Path != "d1/f1.bin" || entries[1].Size != 3*testChunk+5 {
		t.Fatalf("listing of d1: %+v", entries)
	}
}

func TestShareRefuses(t *testing.T) {
	f := newShareFixture(t, 2, 10)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("not shared"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.src, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(f.src, "linkdir")); err != nil {
		t.Fatal(err)
	}
	good := []byte("open sesame")
	for _, c := range []struct {
		name   string
		g      *wire.Get
		peer   string
		target error
	}{
		{"no secret", &wire.Get{ReqID: 1}, "a", wire.ErrUnauthorized},
		{"parent", &wire.Get{ReqID: 1, Paths: []string{"../secret.txt"}, Secret: good}, "a", wire.ErrNotFound},
		{"absolute", &wire.Get{ReqID: 1, Paths: []string{outside}, Secret: good}, "a", wire.ErrNotFound},
		{"inner parent", &wire.Get{ReqID: 1, Paths: []string{"d0/../../x"}, Secret: good}, "a", wire.ErrNotFound},
		{"link to a file outside", &wire.Get{ReqID: 1, Paths: []string{"link.txt"}, Secret: good}, "a", wire.ErrNotFound},
		{"through a link to a folder outside", &wire.Get{ReqID: 1, Paths: []string{"linkdir/secret.txt"}, Secret: good}, "a", wire.ErrNotFound},
		{"wrong secret 1", &wire.Get{ReqID: 1, Secret: []byte("x")}, "b", wire.ErrUnauthorized},
		{"wrong secret 2", &wire.Get{ReqID: 1, Secret: []byte("y")}, "b", wire.ErrUnauthorized},
		{"wrong secret 3", &wire.Get{ReqID: 1, Secret: []byte("z")}, "b", wire.ErrUnauthorized},
		{"right secret after three wrong", &wire.Get{ReqID: 1, Secret: good}, "b", wire.ErrUnauthorized},
	} {
		err := f.get(c.peer, c.g, nil)
		if !errors.Is(err, c.target) {
			t.Errorf("%s: %v, want %v", c.name, err, c.target)
		}
	}
	// The whole folder skips the links.
	if err := f.get("c", &wire.Get{ReqID: 2, Secret: good}, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := f.receiver("c")
	for _, name := range []string{"link.txt", "linkdir"} {
		if _, err := os.Lstat(filepath.Join(r.Dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s was sent: %v", name, err)
		}
	}
}

// TestShareQueue: with one get served at a time, later gets wait and hear
// their place; a higher priority goes first, and within a priority peers
// take turns, however many gets one of them opens.
func TestShareQueue(t *testing.T) {
	f := newShareFixture(t, 1, 1000)
	f.gate = make(chan struct{})
	good := []byte("open sesame")
	var wg sync.WaitGroup
	places := make(map[string][]int)
	var pmu sync.Mutex
	run := func(name, peer string, prio int32) chan struct{} {
		heard := make(chan struct{})
		var once sync.Once
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f.get(peer, &wire.Get{ReqID: 1, Paths: []string{"d0"}, Priority: prio, Secret: good}, func(pos int) {
				pmu.Lock()
				places[name] = append(places[name], pos)
				pmu.Unlock()
				once.Do(func() { close(heard) })
			})
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
		return heard
	}
	heard := func(ch chan struct{}) {
		select {
		case <-ch:
		case <-f.ctx.Done():
			t.Fatal("a queued get never heard its place")
		}
	}
	run("first", "a", 0) // served at once, held at the gate
	f.waitCounts(func(active, _ int) bool { return active == 1 }, "the first get was never served")
	for i := range 3 {
		heard(run(fmt.Sprintf("a%d", i), "a", 0))
	}
	heard(run("b0", "b", 0))
	heard(run("high", "c", 5))
	for range 6 {
		f.gate <- struct{}{}
	}
	wg.Wait()
	f.mu.Lock()
	order := fmt.Sprint(f.order)
	f.mu.Unlock()
	// After a's first: the high priority, then b (a was served last),
	// then a's, with b's turn in between them.
	if want := "[a c b a a a]"; order != want {
		t.Fatalf("served %s, want %s", order, want)
	}
	pmu.Lock()
	defer pmu.Unlock()
	if len(places["high"]) == 0 || places["high"][0] != 1 {
		t.Errorf("the high-priority get heard places %v, want first 1", places["high"])
	}
	if len(places["a2"]) == 0 || places["a2"][0] != 3 {
		t.Errorf("a's third queued get heard places %v, want first 3", places["a2"])
	}
}

// waitCounts waits, on the queue's changes, until ok holds for the
// sharer's active and queued counts, and fails the test with why if the
// test's deadline comes first.
func (f *shareFixture) waitCounts(ok func(active, queued int) bool, why string) {
	f.t.Helper()
	for {
		ch := f.s.changedCh()
		if ok(f.s.counts()) {
			return
		}
		select {
		case <-f.ctx.Done():
			f.t.Fatal(why)
		case <-ch:
		}
	}
}

func (s *Sharer) changedCh() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// TestShareStatus: the sharer's screen sees the get being served, with
// what it has been sent, and the gets waiting.
func TestShareStatus(t *testing.T) {
	f := newShareFixture(t, 1, 3<<20)
	release := make(chan struct{})
	var calls sync.Mutex
	n := 0
	f.s.Pace = func(ctx context.Context, _ string, _ int) error {
		calls.Lock()
		n++
		first := n == 1
		calls.Unlock()
		if first {
			return nil
		}
		select { // every chunk after the first waits
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	good := []byte("open sesame")
	errs := make(chan error, 2)
	for i, peer := range []string{"a", "b"} {
		go func() {
			errs <- f.get(peer, &wire.Get{ReqID: uint64(i + 1), Paths: []string{"d0"}, Priority: 7, Secret: good}, nil)
		}()
	}
	var st ShareStatus
	for {
		if st = f.s.Status(); len(st.Active) == 1 && st.Active[0].Sent > 0 && st.Queued == 1 {
			break
		}
		select {
		case <-f.ctx.Done():
			t.Fatalf("status never showed one get sending and one waiting: %+v", st)
		case <-f.s.changedCh():
		case <-time.After(10 * time.Millisecond): // bytes sent change no queue
		}
	}
	g := st.Active[0]
	if len(st.Waiting) != 1 || st.Waiting[0].Position != 1 || st.Waiting[0].Priority != 7 || st.Waiting[0].Peer == g.Peer {
		t.Errorf("waiting %+v beside active %s, want the other peer at place 1, priority 7", st.Waiting, g.Peer)
	}
	if g.Sent != DefaultChunkSize || g.Priority != 7 || len(g.Paths) != 1 || g.Paths[0] != "d0" || g.Since.IsZero() {
		t.Errorf("active get %+v, want one chunk (%d bytes) of d0 sent at priority 7", g, DefaultChunkSize)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := f.s.Status(); len(st.Active) != 0 || st.Queued != 0 {
		t.Errorf("status after both gets: %+v, want nothing", st)
	}
}

// TestShareKeepsPlace: a queued get whose stream ends and that asks again
// with the same request is given back its place, ahead of gets that came
// after it.
func TestShareKeepsPlace(t *testing.T) {
	f := newShareFixture(t, 1, 1000)
	f.gate = make(chan struct{})
	good := []byte("open sesame")
	// ask starts a get; its first place heard comes on the channel. The
	// get ends when stop is called, or when it is served.
	ask := func(peer string, id uint64) (first chan int, stop context.CancelFunc, done chan error) {
		ctx, cancel := context.WithCancel(f.ctx)
		a, b := memPipe(0)
		go f.s.Handle(f.ctx, b, peer)
		first, done = make(chan int, 1), make(chan error, 1)
		go func() {
			done <- Get(ctx, a, &wire.Get{ReqID: id, Paths: []string{"d0"}, Secret: good}, func(pos int) {
				select {
				case first <- pos:
				default:
				}
			}, nil)
		}()
		return first, cancel, done
	}
	heard := func(ch chan int) int {
		select {
		case p := <-ch:
			return p
		case <-f.ctx.Done():
			t.Fatal("a queued get never heard its place")
			return 0
		}
	}
	_, _, served := ask("a", 1) // served at once, held at the gate
	f.waitCounts(func(active, _ int) bool { return active == 1 }, "the first get was never served")
	bFirst, bStop, bDone := ask("b", 2)
	if p := heard(bFirst); p != 1 {
		t.Fatalf("b heard place %d, want 1", p)
	}
	cFirst, _, cDone := ask("c", 3)
	if p := heard(cFirst); p != 2 {
		t.Fatalf("c heard place %d, want 2", p)
	}
	bStop()
	<-bDone
	f.waitCounts(func(_, queued int) bool { return queued == 1 }, "b's get never left the queue")
	bAgain, _, bDone2 := ask("b", 2)
	if p := heard(bAgain); p != 1 {
		t.Errorf("b asking again heard place %d, want its place back, 1", p)
	}
	for range 3 {
		f.gate <- struct{}{}
	}
	for _, done := range []chan error{served, bDone2, cDone} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := fmt.Sprint(f.order); got != "[a b c]" {
		t.Errorf("served %s, want [a b c]", got)
	}
}
