package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mbAgent is a running dshare agent.
type mbAgent struct {
	*proc
	addr string // its full address
	peer string
}

func startAgent(t *testing.T, home, dir, listen string, extra ...string) *mbAgent {
	t.Helper()
	args := append([]string{"agent", "--home", home, "--offline", "--json", "--dir", dir, "--listen", listen}, extra...)
	p := start(t, nil, args...)
	ev := p.next(t, "agent", 20*time.Second)
	return &mbAgent{proc: p, addr: ev["addrs"].([]any)[0].(string), peer: ev.str("peer")}
}

// stop ends an agent as a user would, and waits for it.
func (a *mbAgent) stop(t *testing.T) {
	t.Helper()
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	if err := a.wait(t, 30*time.Second); err != nil {
		t.Fatalf("agent: %v\n%s", err, a.stderr)
	}
}

// portOf is the UDP port of a QUIC multiaddr.
func portOf(addr string) string {
	return strings.Split(strings.TrimPrefix(addr, "/ip4/127.0.0.1/udp/"), "/")[0]
}

func queue(t *testing.T, home string, args ...string) uint64 {
	t.Helper()
	out, errOut, err := dshare(t, time.Minute, append([]string{"send", "--home", home, "--offline", "--json", "--queue"}, args...)...)
	if err != nil {
		t.Fatalf("send --queue %v: %v\n%s", args, err, errOut)
	}
	return lastEvent(t, out).num("id")
}

// inbox returns the entries of home's inbox, with extra filters.
func inbox(t *testing.T, home string, extra ...string) []event {
	t.Helper()
	out, errOut, err := dshare(t, time.Minute, append([]string{"inbox", "--home", home, "--json"}, extra...)...)
	if err != nil {
		t.Fatalf("inbox: %v\n%s", err, errOut)
	}
	var evs []event
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var e event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("inbox line %q: %v", l, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// outboxItems returns the items of home's agent by ID.
func outboxItems(t *testing.T, home string) map[uint64]event {
	t.Helper()
	out, errOut, err := dshare(t, time.Minute, "outbox", "--home", home, "--json")
	if err != nil {
		t.Fatalf("outbox: %v\n%s", err, errOut)
	}
	items := map[uint64]event{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var e event
		if l != "" && json.Unmarshal([]byte(l), &e) == nil {
			items[e.num("id")] = e
		}
	}
	return items
}

// waitDelivered collects the sender agent's delivered events until want
// items are delivered, and returns their IDs in order.
func waitDelivered(t *testing.T, a *mbAgent, want int, timeout time.Duration) []uint64 {
	t.Helper()
	var ids []uint64
	deadline := time.After(timeout)
	for len(ids) < want {
		select {
		case e, ok := <-a.events:
			if !ok {
				t.Fatalf("the agent ended: %v\n%s", a.err, a.stderr)
			}
			switch e.str("event") {
			case "delivered":
				ids = append(ids, e.num("id"))
			case "failed":
				ids = append(ids, e.num("id"))
			}
		case <-deadline:
			t.Fatalf("%d of %d items delivered within %v\n%s", len(ids), want, timeout, a.stderr)
		}
	}
	return ids
}

// TestMailboxOfflineDelivery: three items are queued while the
// receiver's agent is down; once it starts they are delivered by
// themselves, in priority order, byte-identical, and its inbox shows
// them with their tags and note.
func TestMailboxOfflineDelivery(t *testing.T) {
	tmp := t.TempDir()
	hs, hr := filepath.Join(tmp, "hs"), filepath.Join(tmp, "hr")
	src := filepath.Join(tmp, "src")
	for i, n := range []int64{3 << 20, 1 << 20, 2 << 20} {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("f%d.bin", i)), n, uint64(10+i))
	}
	// The receiver runs once, so that its address is known, and stops.
	rdir := filepath.Join(tmp, "in")
	r := startAgent(t, hr, rdir, "/ip4/127.0.0.1/udp/0/quic-v1")
	r.stop(t)
	s := startAgent(t, hs, filepath.Join(tmp, "sin"), "/ip4/127.0.0.1/udp/0/quic-v1")

	low := queue(t, hs, filepath.Join(src, "f0.bin"), r.addr, "--priority", "1")
	high := queue(t, hs, filepath.Join(src, "f1.bin"), r.addr, "--priority", "5", "--tag", "urgent", "--tag", "photos", "--note", "for the trip")
	mid := queue(t, hs, filepath.Join(src, "f2.bin"), r.addr, "--priority", "3")
	// The agent tries, and fails, while the receiver is down.
	s.next(t, "retry", time.Minute)
	items := outboxItems(t, hs)
	if len(items) != 3 || items[high].str("state") != "queued" || items[high].num("attempts") < 1 {
		t.Fatalf("outbox while the receiver is down: %v", items)
	}

	startAgent(t, hr, rdir, "/ip4/127.0.0.1/udp/"+portOf(r.addr)+"/quic-v1", "--from", s.peer)
	order := waitDelivered(t, s, 3, 2*time.Minute)
	t.Logf("delivered in order %v (low %d, mid %d, high %d)", order, low, mid, high)
	if fmt.Sprint(order) != fmt.Sprint([]uint64{high, mid, low}) {
		t.Fatalf("delivered %v, want %v: highest priority first", order, []uint64{high, mid, low})
	}
	sameTree(t, src, rdir)
	entries := inbox(t, hr)
	if len(entries) != 3 {
		t.Fatalf("%d inbox entries, want 3: %v", len(entries), entries)
	}
	tagged := inbox(t, hr, "--tag", "urgent")
	if len(tagged) != 1 || tagged[0].str("note") != "for the trip" || tagged[0].str("peer") != s.peer {
		t.Fatalf("inbox --tag urgent: %v", tagged)
	}
	files := tagged[0]["files"].([]any)
	if len(files) != 1 || files[0].(map[string]any)["name"] != "f1.bin" || len(files[0].(map[string]any)["root"].(string)) != 64 {
		t.Fatalf("the entry's files: %v", files)
	}
	for id, it := range outboxItems(t, hs) {
		if it.str("state") != "delivered" {
			t.Errorf("item %d is %s", id, it.str("state"))
		}
	}
}

// TestMailboxVolatility: an item queued with --snapshot is delivered as
// its files were when queued, though they change after; one queued
// without it fails with a clear error when its file changes, and the
// others are still delivered.
func TestMailboxVolatility(t *testing.T) {
	tmp := t.TempDir()
	hs, hr := filepath.Join(tmp, "hs"), filepath.Join(tmp, "hr")
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "a.bin"), 1<<20, 1)
	writeRandom(t, filepath.Join(src, "b.bin"), 1<<20, 2)
	writeRandom(t, filepath.Join(src, "c.bin"), 1<<20, 3)
	orig := filepath.Join(tmp, "orig")
	writeRandom(t, filepath.Join(orig, "b.bin"), 1<<20, 2) // what b was when queued
	writeRandom(t, filepath.Join(orig, "c.bin"), 1<<20, 3)
	rdir := filepath.Join(tmp, "in")
	r := startAgent(t, hr, rdir, "/ip4/127.0.0.1/udp/0/quic-v1")
	r.stop(t)
	s := startAgent(t, hs, filepath.Join(tmp, "sin"), "/ip4/127.0.0.1/udp/0/quic-v1")
	a := queue(t, hs, filepath.Join(src, "a.bin"), r.addr)
	b := queue(t, hs, filepath.Join(src, "b.bin"), r.addr, "--snapshot")
	queue(t, hs, filepath.Join(src, "c.bin"), r.addr)
	// Both a and b change after they were queued.
	writeRandom(t, filepath.Join(src, "a.bin"), 1<<20, 91)
	writeRandom(t, filepath.Join(src, "b.bin"), 2<<20, 92)
	_ = b

	startAgent(t, hr, rdir, "/ip4/127.0.0.1/udp/"+portOf(r.addr)+"/quic-v1", "--from", s.peer)
	waitDelivered(t, s, 3, 2*time.Minute)
	items := outboxItems(t, hs)
	if it := items[a]; it.str("state") != "failed" || !strings.Contains(it.str("error"), "changed after it was queued") {
		t.Fatalf("the changed item without --snapshot: %v", it)
	} else {
		t.Logf("item %d: %s", a, it.str("error"))
	}
	// b as it was queued, and c; a never arrived (its partial file is
	// kept in the staging folder, as for any transfer that stopped).
	for _, f := range []string{"b.bin", "c.bin"} {
		sameTree(t, filepath.Join(orig, f), filepath.Join(rdir, f))
	}
	if _, err := os.Stat(filepath.Join(rdir, "a.bin")); !os.IsNotExist(err) {
		t.Fatalf("a.bin arrived though it changed: %v", err)
	}
}

// TestMailboxCrash: an agent killed mid-delivery, on either side, and
// started again: the delivery resumes, and neither the outbox nor the
// inbox loses or repeats an entry.
func TestMailboxCrash(t *testing.T) {
	tmp := t.TempDir()
	hs, hr := filepath.Join(tmp, "hs"), filepath.Join(tmp, "hr")
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "one", "big.bin"), 512<<20, 7)
	writeRandom(t, filepath.Join(src, "two", "big2.bin"), 512<<20, 8)
	rdir := filepath.Join(tmp, "in")
	r := startAgent(t, hr, rdir, "/ip4/127.0.0.1/udp/0/quic-v1")
	rListen := "/ip4/127.0.0.1/udp/" + portOf(r.addr) + "/quic-v1"
	r.stop(t)
	s := startAgent(t, hs, filepath.Join(tmp, "sin"), "/ip4/127.0.0.1/udp/0/quic-v1")
	sListen := "/ip4/127.0.0.1/udp/" + portOf(s.addr) + "/quic-v1"
	r = startAgent(t, hr, rdir, rListen, "--from", s.peer)

	// The sender's agent is killed a quarter of the way.
	one := queue(t, hs, filepath.Join(src, "one"), r.addr)
	killAt(t, r, 128<<20, s)
	t.Logf("sender's agent killed mid-delivery")
	s = startAgent(t, hs, filepath.Join(tmp, "sin"), sListen)
	waitDelivered(t, s, 1, 2*time.Minute)
	r.next(t, "received", time.Minute)

	// Now the receiver's agent.
	two := queue(t, hs, filepath.Join(src, "two"), r.addr)
	killAt(t, r, 128<<20, r)
	t.Logf("receiver's agent killed mid-delivery")
	startAgent(t, hr, rdir, rListen, "--from", s.peer)
	waitDelivered(t, s, 1, 3*time.Minute)

	sameTree(t, src, rdir)
	items := outboxItems(t, hs)
	if len(items) != 2 || items[one].str("state") != "delivered" || items[two].str("state") != "delivered" {
		t.Fatalf("outbox after the crashes: %v", items)
	}
	entries := inbox(t, hr)
	if len(entries) != 2 {
		t.Fatalf("%d inbox entries after the crashes, want 2: %v", len(entries), entries)
	}
	t.Logf("outbox: items %d and %d delivered, after %d and %d attempts; inbox: 2 entries", one, two,
		items[one].num("attempts"), items[two].num("attempts"))
}

// killAt SIGKILLs victim once the receiver r has confirmed at least n
// bytes of a transfer.
func killAt(t *testing.T, r *mbAgent, n uint64, victim *mbAgent) {
	t.Helper()
	r.next(t, "accepted", 2*time.Minute)
	for {
		e := r.next(t, "progress", 2*time.Minute)
		if e.num("bytes") >= n {
			break
		}
	}
	_ = victim.cmd.Process.Signal(syscall.SIGKILL)
	_ = victim.wait(t, 30*time.Second)
}

// TestMailboxHookAndControl: --on-receive gets the entry as JSON on its
// stdin, and a hostile note or tag runs nothing; the control socket
// serves its own user only.
func TestMailboxHookAndControl(t *testing.T) {
	tmp := t.TempDir()
	hs, hr := filepath.Join(tmp, "hs"), filepath.Join(tmp, "hr")
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "f.bin"), 4096, 4)
	hookOut := filepath.Join(tmp, "hook.json")
	pwned := filepath.Join(tmp, "pwned")
	s := startAgent(t, hs, filepath.Join(tmp, "sin"), "/ip4/127.0.0.1/udp/0/quic-v1")
	r := startAgent(t, hr, filepath.Join(tmp, "in"), "/ip4/127.0.0.1/udp/0/quic-v1", "--from", s.peer,
		"--on-receive", "tee "+hookOut)
	note := "$(touch " + pwned + "); `touch " + pwned + "`; rm -rf /"
	queue(t, hs, filepath.Join(src, "f.bin"), r.addr, "--note", note, "--tag", "; touch "+pwned, "--announce", "notify")
	waitDelivered(t, s, 1, time.Minute)
	r.next(t, "received", time.Minute)
	if h := r.next(t, "hook", time.Minute); h.str("error") != "" {
		t.Fatalf("the hook failed: %v", h)
	}
	var entry map[string]any
	if b, err := os.ReadFile(hookOut); err != nil || json.Unmarshal(b, &entry) != nil {
		t.Fatalf("the hook wrote no entry: %v %q", err, b)
	}
	if entry["note"] != note || entry["peer"] != s.peer || len(entry["files"].([]any)) != 1 {
		t.Fatalf("the hook's entry: %v", entry)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a note or tag from the peer ran a command")
	}
	// --announce notify: with no desktop here, the agent says it in a line.
	r.stop(t)
	if !strings.Contains(r.stderr.String(), "dshare: arrived: 1 file(s) from "+s.peer) {
		t.Errorf("no announcement of the delivery:\n%s", r.stderr)
	}
	// With no agent running, --queue says how to start one.
	_, errOut, err := dshare(t, time.Minute, "send", "--home", filepath.Join(tmp, "none"), "--offline", "--queue", filepath.Join(src, "f.bin"), r.addr)
	if err == nil || !strings.Contains(errOut, "no dshare agent is running") || !strings.Contains(errOut, "dshare agent --home") {
		t.Errorf("--queue with no agent: %v %q", err, errOut)
	}

	// Another user cannot use the agent: the home keeps it out, and so
	// does the agent's own check of the caller when the home is open.
	needRoot(t, "to run a command as another user")
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		privileged(t, "needs setpriv (util-linux)")
	}
	other := func() string {
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin("dshare"), "outbox", "--home", hs)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("another user listed the outbox: %s", out)
		}
		return strings.TrimSpace(string(out))
	}
	t.Logf("another user, home closed: %s", other())
	if err := os.Chmod(hs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(hs, "agent.sock"), 0o666); err != nil {
		t.Fatal(err)
	}
	// The user must be able to run the binary and reach the socket.
	for _, d := range []string{filepath.Dir(bin("dshare")), tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	msg := other()
	t.Logf("another user, socket open: %s", msg)
	if !strings.Contains(msg, "serves only its own user") {
		t.Fatalf("with the socket open to all, another user got %q, want the agent's refusal", msg)
	}
}
