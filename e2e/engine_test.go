package e2e

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// The receiver's engine under kills, races and long names: whatever
// happens, a file appears once, under its own name, complete, and a
// resume does not send again what already arrived.

// engSeed returns the seed for a test's random choices: DSHARE_SEED if it
// is set, the clock otherwise. It is logged either way, so that a failure
// replays with DSHARE_SEED=<seed>.
func engSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DSHARE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DSHARE_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with DSHARE_SEED=%d)", seed, seed)
	return seed
}

// engClock is a test's overall deadline. Every wait takes the smaller of
// its own timeout and what is left.
type engClock struct {
	t   *testing.T
	end time.Time
}

func engDeadline(t *testing.T, d time.Duration) *engClock { return &engClock{t, time.Now().Add(d)} }

func (c *engClock) left(step time.Duration) time.Duration {
	c.t.Helper()
	left := time.Until(c.end)
	if left <= 0 {
		c.t.Fatal("the test's deadline has passed")
	}
	return min(step, left)
}

// engCopyName matches the " (n)" the receiver adds to a name it had to
// change.
var engCopyName = regexp.MustCompile(` \(\d+\)`)

// engCopies lists the names below dir that carry a " (n)" suffix.
func engCopies(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if engCopyName.MatchString(d.Name()) {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// engClean asserts that the receiver left nothing of its own in dir and
// made no copy under a changed name.
func engClean(t testing.TB, dir string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(dir, ".dshare")); err == nil {
		names, _ := filepath.Glob(filepath.Join(dir, ".dshare", "*"))
		t.Fatalf("the staging directory is still there, holding %q", names)
	}
	if c := engCopies(t, dir); len(c) > 0 {
		t.Fatalf("%d names carry a copy suffix: %q", len(c), c)
	}
}

// engTap follows the events of one process and keeps what the tests
// account with.
type engTap struct {
	p         *proc
	lastSent  uint64 // sender: "sent" of its last progress event
	confirmed uint64 // "bytes" of the last progress event
	progress  int    // progress events seen
	done      event
	failed    []event
	files     []event
	closed    bool // the event stream has ended
}

func engFollow(p *proc) *engTap { return &engTap{p: p} }

func (tp *engTap) take(e event, ok bool) {
	if !ok {
		tp.closed = true
		return
	}
	switch e.str("event") {
	case "progress":
		tp.progress++
		tp.confirmed = e.num("bytes")
		if _, has := e["sent"]; has {
			tp.lastSent = e.num("sent")
		}
	case "done":
		tp.done = e
	case "failed":
		tp.failed = append(tp.failed, e)
	case "file":
		tp.files = append(tp.files, e)
	}
}

func (tp *engTap) events() <-chan event {
	if tp == nil || tp.closed {
		return nil
	}
	return tp.p.events
}

// engPump reads the events of a and b (either may be nil) until cond
// holds.
func engPump(t *testing.T, limit time.Duration, a, b *engTap, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(limit)
	for !cond() {
		ac, bc := a.events(), b.events()
		if ac == nil && bc == nil {
			t.Fatalf("every process ended before %s", what)
		}
		select {
		case e, ok := <-ac:
			a.take(e, ok)
		case e, ok := <-bc:
			b.take(e, ok)
		case <-deadline:
			var errs []string
			for _, tp := range []*engTap{a, b} {
				if tp != nil {
					errs = append(errs, tp.p.stderr.String())
				}
			}
			t.Fatalf("no %s within %v\n%s", what, limit, strings.Join(errs, "\n---\n"))
		}
	}
}

// engPumpFor reads the events of a and b (either may be nil) for d. It
// picks the moment of a kill; it never stands in for an event.
func engPumpFor(t *testing.T, d time.Duration, a, b *engTap) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-a.events():
			a.take(e, ok)
		case e, ok := <-b.events():
			b.take(e, ok)
		case <-timer.C:
			return
		}
	}
}

// engJitter bounds the random delay between a trial's trigger event and
// its kill: a little over the receiver's commit interval (200 ms).
const engJitter = 250 * time.Millisecond

// exit waits until the process has ended, reading its last events, and
// returns its error.
func (tp *engTap) exit(t *testing.T, limit time.Duration) error {
	t.Helper()
	engPump(t, limit, tp, nil, "exit", func() bool { return tp.closed })
	select {
	case <-tp.p.done:
		return tp.p.err
	case <-time.After(limit):
		t.Fatalf("process still running after %v", limit)
		return nil
	}
}

// kill ends the process with SIGKILL and reads its last events.
func (tp *engTap) kill(t *testing.T) {
	t.Helper()
	_ = tp.p.cmd.Process.Signal(syscall.SIGKILL) // it may have ended already
	_ = tp.exit(t, 10*time.Second)
}

// engSentName returns the name a sender's done event says path was
// placed under: the "renamed" entry, or path itself.
func engSentName(done event, path string) string {
	if m, ok := done["renamed"].(map[string]any); ok {
		if n, ok := m[path].(string); ok {
			return n
		}
	}
	return path
}

// TestKillAfterFirstFile kills the sender the moment its first file is
// in place, and runs it again: the placed file is answered as held, not
// sent a second time under another name.
func TestKillAfterFirstFile(t *testing.T) {
	clock := engDeadline(t, 4*time.Minute)
	t0 := time.Now()
	aSize, bSize := int64(20<<20), int64(300<<20)
	if testing.Short() {
		bSize = 64 << 20
	}
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	writeRandom(t, filepath.Join(src, "a.bin"), aSize, 11)
	writeRandom(t, filepath.Join(src, "b.bin"), bSize, 12)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes", "--once")
	r := engFollow(recv)
	sendArgs := []string{"send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json",
		filepath.Join(src, "a.bin"), filepath.Join(src, "b.bin"), addr}
	s := engFollow(start(t, nil, sendArgs...))

	engPump(t, clock.left(time.Minute), s, r, "file event for a.bin", func() bool {
		return slices.ContainsFunc(r.files, func(e event) bool { return e.str("path") == "a.bin" })
	})
	s.kill(t)
	if s.done != nil {
		t.Fatalf("the sender finished before it could be killed: %v", s.done)
	}
	if fi, err := os.Stat(filepath.Join(out, "a.bin")); err != nil || fi.Size() != aSize {
		t.Fatalf("a.bin after its file event: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(out, "b.bin")); err == nil {
		t.Fatal("b.bin appeared under its final name before it was complete")
	}
	t.Logf("killed the sender after a.bin was placed: %d bytes confirmed, %d handed to the network", s.confirmed, s.lastSent)

	stdout, stderr, err := dshare(t, clock.left(3*time.Minute), sendArgs...)
	if err != nil {
		t.Fatalf("second send: %v\n%s", err, stderr)
	}
	done := lastEvent(t, stdout)
	if err := r.exit(t, clock.left(30*time.Second)); err != nil {
		t.Fatalf("recv --once: %v\n%s", err, recv.stderr)
	}
	var killed uint64
	if len(r.failed) > 0 {
		killed = r.failed[0].num("received")
	}
	t.Logf("second run: sent %d, skipped %d bytes in %d files, renamed %v; received in the killed run %d: %.3f × the %d bytes (%v)",
		done.num("sent"), done.num("skipped"), done.num("skipped_files"), done["renamed"],
		killed, float64(killed+done.num("sent"))/float64(aSize+bSize), aSize+bSize, time.Since(t0).Round(time.Millisecond))
	engClean(t, out)
	sameTree(t, src, out)
	if done.str("event") != "done" || done.num("skipped_files") < 1 || done.num("skipped") < uint64(aSize) {
		t.Fatalf("the second run did not skip a.bin: %v", done)
	}
	if _, ok := done["renamed"]; ok {
		t.Fatalf("the second run reports renamed files: %v", done["renamed"])
	}
}

// engTrial is what one trial of TestRandomKills did.
type engTrial struct {
	victim, trigger string
	wire            uint64 // payload bytes over the wire, over every run
	waste           float64
	lowerBound      bool // a kill left no exact count: wire is a lower bound
	rounds          int
	took            time.Duration
}

// engKillSetup is the source TestRandomKills sends in every trial.
type engKillSetup struct {
	src   string
	paths []string // big file, tree
	total uint64
	files int
	seed  uint64 // the test's, for messages
}

func engKillSource(t *testing.T, dir string, rng *rand.Rand, big int64, small int) engKillSetup {
	t.Helper()
	seed := rng.Uint64()
	writeRandom(t, filepath.Join(dir, "big.bin"), big, seed)
	total := uint64(big)
	tree := filepath.Join(dir, "tree")
	parts := []string{"alpha", "beta", "gamma", "delta", "ε-utf8", "with space"}
	for i := range small {
		var p []string
		for range rng.IntN(4) {
			p = append(p, parts[rng.IntN(len(parts))])
		}
		p = append(p, fmt.Sprintf("f%03d.dat", i))
		size := rng.Int64N(64<<10 + 1)
		if i < 3 {
			size = 0 // a few empty files for sure
		}
		writeRandom(t, filepath.Join(tree, filepath.Join(p...)), size, seed+uint64(i)+1)
		total += uint64(size)
	}
	for _, d := range []string{"empty", "alpha/empty too", "beta/gamma/deep/empty"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return engKillSetup{src: dir, paths: []string{filepath.Join(dir, "big.bin"), tree}, total: total, files: small + 1}
}

// TestRandomKills sends a large file and a tree of small ones, kills the
// sender, the receiver or both at a random point, restarts what was
// killed and sends again until done. Each trial must end with the tree
// byte for byte, no copy under a changed name, no staging directory, and
// at most 10% of the payload sent twice.
//
// The kill point is an event (the sender's progress reaching a random
// byte count, or the receiver's file event number k), then a random delay
// under engJitter: the receiver emits every event right after a commit,
// and without the delay every kill would land at the same phase of its
// cycle of writing, placing and syncing.
//
// Accounting of the payload bytes over the wire, per sender process:
//   - one that finished: its done event's "sent", which covers all of its
//     sessions, the ones cut short by a killed receiver included;
//   - one killed alone: the larger of the "sent" of its last progress
//     event and the "received" of the receiver's failed event for its
//     session (the receiver reports it when the next run supersedes it);
//   - one killed together with the receiver: the "sent" of its last
//     progress event. It is killed the moment that event arrives, before
//     the receiver, so the count misses only what it sent in the time
//     the test takes to react.
//
// waste = (sum over processes − total size) / total size.
func TestRandomKills(t *testing.T) {
	trials, big := 20, int64(400<<20)
	if testing.Short() {
		trials, big = 4, 64<<20
	}
	clock := engDeadline(t, time.Duration(trials)*30*time.Second)
	seed := engSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))
	base := t.TempDir()
	setup := engKillSource(t, filepath.Join(base, "src"), rng, big, 300)
	setup.seed = seed
	t.Logf("source: %d files, %d bytes", setup.files, setup.total)

	t0 := time.Now()
	var results []engTrial
	for i := range trials {
		res := engKillTrial(t, clock, setup, filepath.Join(base, fmt.Sprintf("trial%02d", i)), i, rng)
		results = append(results, res)
	}
	var worst float64
	for i, r := range results {
		lb := ""
		if r.lowerBound {
			lb = " (lower bound)"
		}
		t.Logf("trial %2d: %-8s at a %-5s trigger, %d rounds, %d bytes over the wire, waste %+.2f%%%s, %v",
			i, r.victim, r.trigger, r.rounds, r.wire, 100*r.waste, lb, r.took.Round(time.Millisecond))
		worst = max(worst, r.waste)
	}
	t.Logf("%d trials in %v; worst waste %.2f%%", trials, time.Since(t0).Round(time.Millisecond), 100*worst)
	for i, r := range results {
		if r.waste > 0.10 {
			t.Errorf("trial %d (seed %d; %s, %s trigger) wasted %.2f%% of the payload, over 10%%", i, seed, r.victim, r.trigger, 100*r.waste)
		}
	}
}

func engKillTrial(t *testing.T, clock *engClock, setup engKillSetup, dir string, i int, rng *rand.Rand) engTrial {
	t.Helper()
	t0 := time.Now()
	out, hr, hs := filepath.Join(dir, "out"), filepath.Join(dir, "hr"), filepath.Join(dir, "hs")
	defer os.RemoveAll(dir)

	res := engTrial{victim: []string{"sender", "receiver", "both"}[rng.IntN(3)], trigger: []string{"bytes", "files"}[rng.IntN(2)]}
	paths := slices.Clone(setup.paths)
	if rng.IntN(2) == 0 {
		slices.Reverse(paths) // the tree first, then the big file
	}
	atBytes := rng.Uint64N(setup.total)
	atFiles := 1 + rng.IntN(setup.files)
	jitter := time.Duration(rng.Int64N(int64(engJitter)))

	listen := "/ip4/127.0.0.1/udp/" + strconv.Itoa(freeUDPPort(t)) + "/quic-v1"
	recvArgs := []string{"recv", "--home", hr, "--offline", "--json", "--dir", out, "--yes", "--listen", listen}
	startRecv := func() (*engTap, string) {
		p := start(t, nil, recvArgs...)
		addr := p.next(t, "listening", clock.left(10*time.Second))["addrs"].([]any)[0].(string)
		return engFollow(p), addr
	}
	r, addr := startRecv()
	sendArgs := append(append([]string{"send", "--home", hs, "--offline", "--json", "--retry-for", "1m"}, paths...), addr)

	s := engFollow(start(t, nil, sendArgs...))
	var cond func() bool
	if res.trigger == "bytes" {
		cond = func() bool { return s.confirmed >= atBytes || s.closed || r.closed }
	} else {
		cond = func() bool { return len(r.files) >= atFiles || s.closed || r.closed }
	}
	engPump(t, clock.left(2*time.Minute), s, r, "the kill point", cond)
	if r.closed {
		t.Fatalf("trial %d: the receiver ended on its own: %v\n%s", i, r.p.err, r.p.stderr)
	}
	atConfirmed, atPlaced := s.confirmed, len(r.files)

	senders := []*engTap{s}
	killedSender := res.victim != "receiver"
	killedRecv := res.victim != "sender"
	failedBefore := len(r.failed)
	if res.victim == "both" {
		// The sender dies as one of its progress events arrives, so that
		// its count of bytes sent is current: no receiver survives to
		// report what it got.
		if res.trigger == "files" {
			n := s.progress
			engPump(t, clock.left(time.Minute), s, r, "a progress event", func() bool { return s.progress > n || s.closed })
		}
		s.kill(t)
	}
	// Every event is emitted right after the receiver commits; the jitter
	// lands the kill anywhere in its cycle of writing, placing and
	// syncing.
	engPumpFor(t, jitter, s, r)
	finishedFirst := s.done != nil
	if res.victim == "sender" {
		s.kill(t)
	}
	if killedRecv {
		r.kill(t)
	}
	who := map[string]string{"sender": "the sender", "receiver": "the receiver", "both": "both"}[res.victim]
	t.Logf("trial %d: killed %s %v after %d of %d bytes confirmed, %d of %d files placed (trigger %s at %d bytes / %d files; %s first)%s",
		i, who, jitter.Round(time.Millisecond), atConfirmed, setup.total, atPlaced, setup.files, res.trigger, atBytes, atFiles,
		filepath.Base(paths[0]), map[bool]string{true: "; the sender had finished already", false: ""}[finishedFirst])
	if killedRecv {
		r, _ = startRecv() // same identity and port: the address stays valid
	}

	// Run the same send until one run completes after the last restart.
	cur := s
	if killedSender && !finishedFirst || killedRecv && finishedFirst {
		cur = nil
	}
	for res.rounds = 1; ; res.rounds++ {
		if cur == nil {
			cur = engFollow(start(t, nil, sendArgs...))
			senders = append(senders, cur)
		}
		engPump(t, clock.left(3*time.Minute), cur, r, "the end of the send", func() bool { return cur.closed })
		if err := cur.exit(t, clock.left(10*time.Second)); err == nil && cur.done != nil {
			break
		} else if res.rounds == 4 {
			t.Fatalf("trial %d: no send completed in %d rounds: %v\n%s", i, res.rounds, err, cur.p.stderr)
		}
		cur = nil
	}
	engPump(t, clock.left(time.Minute), r, nil, "the receiver's done event", func() bool { return r.done != nil })

	for k, x := range senders {
		switch {
		case x.done != nil:
			res.wire += x.done.num("sent")
		case k == 0 && !killedRecv && len(r.failed) > failedBefore:
			res.wire += max(x.lastSent, r.failed[failedBefore].num("received"))
		default:
			res.wire += x.lastSent
			if k > 0 || !killedSender {
				res.lowerBound = true
			}
		}
	}
	res.waste = (float64(res.wire) - float64(setup.total)) / float64(setup.total)
	res.took = time.Since(t0)
	t.Logf("trial %d: %d rounds, %d bytes over the wire for %d: waste %+.2f%%, %v",
		i, res.rounds, res.wire, setup.total, 100*res.waste, res.took.Round(time.Millisecond))

	if c := engCopies(t, out); len(c) > 0 {
		same := 0
		for _, name := range c {
			orig := engCopyName.ReplaceAllString(name, "")
			if fileHash(t, filepath.Join(out, name)) == fileHash(t, filepath.Join(out, orig)) {
				same++
			}
		}
		t.Errorf("trial %d (seed %d): %d names carry a copy suffix, %d of them the same bytes as the file under the original name: %q",
			i, setup.seed, len(c), same, c)
	}
	if names, _ := filepath.Glob(filepath.Join(out, ".dshare", "*")); names != nil {
		t.Errorf("trial %d (seed %d): the staging directory still holds %q", i, setup.seed, names)
	} else if _, err := os.Lstat(filepath.Join(out, ".dshare")); err == nil {
		t.Errorf("trial %d (seed %d): an empty staging directory is left behind", i, setup.seed)
	}
	if t.Failed() {
		t.FailNow()
	}
	sameTree(t, setup.src, out)
	r.kill(t)
	return res
}

// TestConcurrentSameName has two senders offer different files under the
// same name to one receiver at once, in both orders. Each must end up
// whole under its own name, and each sender told which.
func TestConcurrentSameName(t *testing.T) {
	size := int64(150 << 20)
	if testing.Short() {
		size = 32 << 20
	}
	src := t.TempDir()
	a, b := filepath.Join(src, "a", "f.bin"), filepath.Join(src, "b", "f.bin")
	writeRandom(t, a, size, 21)
	writeRandom(t, b, size, 22)
	t.Run("A first", func(t *testing.T) { engSameName(t, a, b) })
	t.Run("B first", func(t *testing.T) { engSameName(t, b, a) })
}

func engSameName(t *testing.T, first, second string) {
	clock := engDeadline(t, 3*time.Minute)
	t0 := time.Now()
	out, tmp := t.TempDir(), t.TempDir()
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes")
	r := engFollow(recv)
	send := func(home, file string) *engTap {
		return engFollow(start(t, nil, "send", "--home", filepath.Join(tmp, home), "--offline", "--json", file, addr))
	}
	s1 := send("h1", first)
	// The second offer comes while the first is on its way.
	engPump(t, clock.left(30*time.Second), s1, r, "the first sender's progress", func() bool { return s1.progress > 0 || s1.closed })
	if s1.closed {
		t.Fatalf("the first sender ended before the second started: %v\n%s", s1.p.err, s1.p.stderr)
	}
	s2 := send("h2", second)
	for _, s := range []*engTap{s1, s2} {
		if err := s.exit(t, clock.left(2*time.Minute)); err != nil || s.done == nil {
			t.Fatalf("send: %v\n%s", err, s.p.stderr)
		}
	}
	engPump(t, clock.left(time.Minute), r, nil, "two file events", func() bool { return len(r.files) >= 2 })
	engPump(t, clock.left(30*time.Second), r, nil, "the receiver's done", func() bool { return r.done != nil })

	n1, n2 := engSentName(s1.done, "f.bin"), engSentName(s2.done, "f.bin")
	t.Logf("first sender's file placed as %q (sent %d), second as %q (sent %d); receiver files %v; %v",
		n1, s1.done.num("sent"), n2, s2.done.num("sent"), r.files, time.Since(t0).Round(time.Millisecond))
	if n1 == n2 || !slices.Contains([]string{"f.bin", "f (1).bin"}, n1) || !slices.Contains([]string{"f.bin", "f (1).bin"}, n2) {
		t.Fatalf("senders report names %q and %q; want f.bin and f (1).bin, one each", n1, n2)
	}
	for _, x := range []struct{ src, name string }{{first, n1}, {second, n2}} {
		if fileHash(t, x.src) != fileHash(t, filepath.Join(out, x.name)) {
			t.Fatalf("%s does not hold %s", x.name, x.src)
		}
	}
	// The receiver's file events agree with what each sender was told.
	byPeer := map[string]string{}
	for _, e := range r.files {
		byPeer[e.str("peer")] = e.str("name")
	}
	if len(byPeer) != 2 {
		t.Fatalf("file events from %d peers: %v", len(byPeer), r.files)
	}
	for _, x := range []struct{ home, name string }{{"h1", n1}, {"h2", n2}} {
		id, _, err := dshare(t, clock.left(time.Minute), "id", "--home", filepath.Join(tmp, x.home))
		if err != nil {
			t.Fatal(err)
		}
		if got := byPeer[strings.TrimSpace(id)]; got != x.name {
			t.Fatalf("the receiver placed the file of %s as %q, its sender was told %q", x.home, got, x.name)
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 {
		t.Fatalf("the target holds %q, want exactly two files", names)
	}
}

// TestLongNames sends names of exactly 255 bytes, ASCII and multibyte
// UTF-8, kills the sender in the middle of a multi-chunk file with such a
// name, and resumes.
func TestLongNames(t *testing.T) {
	// Large enough that the rest of the file cannot arrive between the
	// confirmation the kill waits for and the kill (a CI run saw 32 MiB
	// do so).
	size := int64(128 << 20)
	if testing.Short() {
		size = 64 << 20
	}
	ascii := strings.Repeat("a", 251) + ".bin" // 255 bytes
	euro := strings.Repeat("€", 85)            // 85 × 3 bytes
	eacute := strings.Repeat("é", 127) + "x"   // 127 × 2 + 1 bytes
	for _, n := range []string{ascii, euro, eacute} {
		if len(n) != 255 {
			t.Fatalf("name of %d bytes", len(n))
		}
	}
	src := t.TempDir()
	dir := filepath.Join(src, "long")
	writeRandom(t, filepath.Join(dir, ascii), size, 41)
	writeRandom(t, filepath.Join(dir, euro), 5<<20+17, 42)
	writeRandom(t, filepath.Join(dir, eacute), 1000, 43)

	t.Run("resume", func(t *testing.T) {
		clock := engDeadline(t, 3*time.Minute)
		t0 := time.Now()
		out, tmp := t.TempDir(), t.TempDir()
		recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes", "--once")
		sendArgs := []string{"send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", dir, addr}
		// The ASCII name sorts first: an eighth of it is confirmed well
		// before its end.
		confirmed := sendAndKill(t, sendArgs, uint64(size)/8)
		if parts := partFiles(t, out); len(parts) == 0 {
			t.Fatal("no temporary file after the kill")
		}
		if _, err := os.Stat(filepath.Join(out, "long", ascii)); err == nil {
			t.Fatal("the file appeared under its final name before it was complete")
		}
		stdout, stderr, err := dshare(t, clock.left(2*time.Minute), sendArgs...)
		if err != nil {
			t.Fatalf("second send: %v\n%s", err, stderr)
		}
		done := lastEvent(t, stdout)
		if err := recv.wait(t, clock.left(30*time.Second)); err != nil {
			t.Fatalf("recv: %v\n%s", err, recv.stderr)
		}
		t.Logf("killed at %d bytes confirmed; second run sent %d, skipped %d, renamed %v; %v",
			confirmed, done.num("sent"), done.num("skipped"), done["renamed"], time.Since(t0).Round(time.Millisecond))
		if done.num("skipped") == 0 {
			t.Fatal("nothing was resumed")
		}
		engClean(t, out)
		sameTree(t, src, out)
	})

	// A different file already at each long name: the received ones get
	// numbered names, cut to fit 255 bytes on a character boundary.
	t.Run("collision", func(t *testing.T) {
		clock := engDeadline(t, 2*time.Minute)
		out, tmp := t.TempDir(), t.TempDir()
		for i, n := range []string{ascii, euro, eacute} {
			writeRandom(t, filepath.Join(out, "long", n), 100, uint64(50+i))
		}
		recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes", "--once")
		r := engFollow(recv)
		stdout, stderr, err := dshare(t, clock.left(2*time.Minute), "send", "--home", filepath.Join(tmp, "hs"),
			"--offline", "--json", dir, addr)
		if err != nil {
			t.Fatalf("send: %v\n%s", err, stderr)
		}
		done := lastEvent(t, stdout)
		if err := r.exit(t, clock.left(30*time.Second)); err != nil {
			t.Fatalf("recv: %v\n%s", err, recv.stderr)
		}
		for i, n := range []string{ascii, euro, eacute} {
			offered := "long/" + n
			got := engSentName(done, offered)
			base := filepath.Base(got)
			t.Logf("%d-byte name (%d runes) placed as %d bytes (%d runes): %q", len(n), utf8.RuneCountInString(n),
				len(base), utf8.RuneCountInString(base), base)
			if got == offered || len(base) > 255 || !utf8.ValidString(base) || !strings.Contains(base, " (1)") {
				t.Errorf("%q placed as %q", offered, got)
				continue
			}
			if fileHash(t, filepath.Join(dir, n)) != fileHash(t, filepath.Join(out, got)) {
				t.Errorf("%q does not hold what was sent", got)
			}
			keep := filepath.Join(t.TempDir(), "keep")
			writeRandom(t, keep, 100, uint64(50+i))
			if fileHash(t, keep) != fileHash(t, filepath.Join(out, offered)) {
				t.Errorf("the file that was at %q changed", offered)
			}
		}
		if _, err := os.Lstat(filepath.Join(out, ".dshare")); err == nil {
			t.Error("the staging directory is left behind")
		}
	})
}
