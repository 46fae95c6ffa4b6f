package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// teamLab is the NAT lab of TestNAT with a team relay: the relay on the
// internet switch, hosts a behind NAT A and b behind NAT B, both NATs
// symmetric so that no hole punch gets through and every byte between a
// and b goes through the relay.
type teamLab struct {
	relayNS, a, b string
	tmp           string
}

func newTeamLab(t *testing.T) *teamLab {
	l := newLab(t)
	needIptables(t)
	inet := l.bridge("inet")
	tl := &teamLab{relayNS: l.ns("relay"), tmp: t.TempDir()}
	l.plug(tl.relayNS, inet, "eth0", "7.0.0.1/24")
	_, tl.a = l.natted("A", inet, "7.0.0.2", "10.1.0", true)
	_, tl.b = l.natted("B", inet, "7.0.0.3", "10.2.0", true)
	return tl
}

func (tl *teamLab) home(name string) string { return filepath.Join(tl.tmp, "home-"+name) }

// id returns the peer ID of the identity in home, creating it.
func (tl *teamLab) id(t *testing.T, name string) string {
	t.Helper()
	out, errOut, err := dshare(t, 20*time.Second, "id", "--home", tl.home(name), "--offline")
	if err != nil {
		t.Fatalf("dshare id: %v\n%s", err, errOut)
	}
	return strings.TrimSpace(out)
}

// relay starts dshare relay with args and returns it and its address.
func (tl *teamLab) relay(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	p := start(t, inNS(tl.relayNS), append([]string{"relay", "--home", tl.home("relay"), "--json",
		"--listen", "/ip4/7.0.0.1/udp/4747/quic-v1", "--listen", "/ip4/7.0.0.1/tcp/4747"}, args...)...)
	ev := p.next(t, "listening", 20*time.Second)
	return p, "/ip4/7.0.0.1/udp/4747/quic-v1/p2p/" + ev.str("peer")
}

// recv starts a receiver named name behind NAT A with relay r, and
// waits until the relay has answered its reservation.
func (tl *teamLab) recv(t *testing.T, name, r string, extra ...string) (p *proc, id, out string, reserved event) {
	t.Helper()
	out = filepath.Join(tl.tmp, "out-"+name)
	p = start(t, inNS(tl.a), append([]string{"recv", "--home", tl.home(name), "--json", "--yes",
		"--dir", out, "--bootstrap", r, "--relay", r, "--listen", "/ip4/0.0.0.0/udp/0/quic-v1"}, extra...)...)
	id = p.next(t, "listening", 20*time.Second).str("peer")
	reserved = p.next(t, "relay", 40*time.Second)
	return p, id, out, reserved
}

// send starts a sender named name behind NAT B.
func (tl *teamLab) send(t *testing.T, name, r, path, to string) *proc {
	t.Helper()
	return start(t, inNS(tl.b), "send", "--home", tl.home(name), "--json", "--bootstrap", r, path, to)
}

// TestRelayTeamAllowList: a relay that allows receiver A only. A sender
// behind the other NAT reaches A through it; a receiver with another
// identity is refused a slot and says so, and a send to it fails soon
// with a message that says why.
func TestRelayTeamAllowList(t *testing.T) {
	tl := newTeamLab(t)
	aID := tl.id(t, "a")
	relay, r := tl.relay(t, "--allow", aID)

	recvA, id, outA, res := tl.recv(t, "a", r, "--once")
	if id != aID || res["reserved"] != true {
		t.Fatalf("receiver A (%s, allowed %s): relay event %v, want a reservation", id, aID, res)
	}
	recvC, cID, _, res := tl.recv(t, "c", r)
	if res["reserved"] != false || res.str("reason") != "not_allowed" {
		t.Fatalf("receiver C: relay event %v, want a refusal as not allowed", res)
	}
	ev := relay.next(t, "reservation", 10*time.Second)
	for ev.str("peer") != cID || ev["accepted"] != false {
		ev = relay.next(t, "reservation", 10*time.Second)
	}
	if ev.str("reason") != "not_allowed" {
		t.Fatalf("relay's reservation event for C: %v", ev)
	}

	src := filepath.Join(tl.tmp, "src")
	writeRandom(t, filepath.Join(src, "file.bin"), 8<<20, 31)
	sendA := tl.send(t, "b", r, filepath.Join(src, "file.bin"), aID)
	done := sendA.next(t, "done", 3*time.Minute)
	if err := sendA.wait(t, 30*time.Second); err != nil {
		t.Fatalf("send to A: %v\n%s", err, sendA.stderr)
	}
	if err := recvA.wait(t, 30*time.Second); err != nil {
		t.Fatalf("receiver A: %v\n%s", err, recvA.stderr)
	}
	if done.str("path") != "relayed" {
		t.Fatalf("path %q, want relayed behind symmetric NATs", done.str("path"))
	}
	sameTree(t, src, outA)
	opened := relay.next(t, "circuit_opened", 10*time.Second)
	if opened.str("dst") != aID {
		t.Fatalf("circuit %v, want one to A", opened)
	}
	// The circuit that carried the file, among any short-lived others.
	closed := relay.next(t, "circuit_closed", 30*time.Second)
	for closed.str("dst") != aID || closed.num("bytes") < 8<<20 {
		t.Logf("circuit closed: %v", closed)
		closed = relay.next(t, "circuit_closed", 30*time.Second)
	}
	t.Logf("send to A: %.1fs, relayed; relay's circuit: %d bytes in %.1fs", done["seconds"], closed.num("bytes"), closed["seconds"])

	startAt := time.Now()
	sendC := tl.send(t, "b2", r, filepath.Join(src, "file.bin"), cID)
	err := sendC.wait(t, 40*time.Second)
	took := time.Since(startAt)
	msg := strings.TrimSpace(sendC.stderr.String())
	t.Logf("send to C failed after %.1fs: %s", took.Seconds(), msg)
	if err == nil {
		t.Fatal("send to a receiver without a slot succeeded")
	}
	if took > 30*time.Second {
		t.Fatalf("send to C took %v to fail, want at most 30s", took)
	}
	if want := "the relay holds no reservation for it, so it is not on the relay's allow-list or not running"; !strings.Contains(msg, want) {
		t.Fatalf("sender's message lacks %q", want)
	}

	// C's stderr is whole once it has exited.
	stop(t, recvC)
	want := "relay " + r[strings.LastIndex(r, "/")+1:] + " refused a reservation: not on its allow-list"
	if !strings.Contains(recvC.stderr.String(), want) {
		t.Fatalf("receiver C's stderr lacks %q:\n%s", want, recvC.stderr)
	}
	t.Logf("receiver C says: %s", strings.TrimSpace(recvC.stderr.String()))
}

// TestRelayTeamMaxRate: two transfers at once through a relay with a
// global cap of 2 MiB/s, each peer allowed far more: together they move
// at the cap, within 10 %.
func TestRelayTeamMaxRate(t *testing.T) {
	const (
		capBytes = 2 << 20
		fileSize = 16 << 20
	)
	tl := newTeamLab(t)
	aID := tl.id(t, "a")
	_, r := tl.relay(t, "--allow", aID, "--max-rate", "2M", "--peer-rate", "50M")
	recvA, _, out, res := tl.recv(t, "a", r)
	if res["reserved"] != true {
		t.Fatalf("relay event %v", res)
	}
	var sends []*proc
	for i := range 2 {
		src := filepath.Join(tl.tmp, fmt.Sprintf("src%d", i))
		writeRandom(t, filepath.Join(src, fmt.Sprintf("file%d.bin", i)), fileSize, uint64(40+i))
		sends = append(sends, tl.send(t, fmt.Sprintf("b%d", i), r, filepath.Join(src, fmt.Sprintf("file%d.bin", i)), aID))
	}
	var first, last time.Time
	for i, s := range sends {
		s.next(t, "accepted", 2*time.Minute)
		if now := time.Now(); i == 0 || now.Before(first) {
			first = now
		}
	}
	for i, s := range sends {
		done := s.next(t, "done", 2*time.Minute)
		if done.str("path") != "relayed" {
			t.Fatalf("send %d: path %q, want relayed", i, done.str("path"))
		}
		last = time.Now()
		t.Logf("send %d: %d bytes in %.1fs from its accept", i, done.num("bytes"), done["seconds"])
	}
	for _, s := range sends {
		if err := s.wait(t, 30*time.Second); err != nil {
			t.Fatalf("send: %v\n%s", err, s.stderr)
		}
	}
	elapsed := last.Sub(first).Seconds()
	rate := float64(2*fileSize) / elapsed
	t.Logf("two transfers, %d MiB in all, in %.2fs: %.3f MiB/s through a relay capped at %.1f MiB/s (%.1f %% of the cap)",
		2*fileSize>>20, elapsed, rate/(1<<20), float64(capBytes)/(1<<20), 100*rate/capBytes)
	if rate > 1.1*capBytes || rate < 0.9*capBytes {
		t.Fatalf("%.3f MiB/s is not within 10 %% of the cap", rate/(1<<20))
	}
	for i := range 2 {
		sameTree(t, filepath.Join(tl.tmp, fmt.Sprintf("src%d", i), fmt.Sprintf("file%d.bin", i)),
			filepath.Join(out, fmt.Sprintf("file%d.bin", i)))
	}
	_ = recvA
}

// TestRelayTeamQuota: a sender that uses up its daily quota on the relay
// has its transfer ended, and its message names the reason.
func TestRelayTeamQuota(t *testing.T) {
	tl := newTeamLab(t)
	aID := tl.id(t, "a")
	relay, r := tl.relay(t, "--allow", aID, "--peer-quota", "8M", "--peer-rate", "8M")
	_, _, _, res := tl.recv(t, "a", r)
	if res["reserved"] != true {
		t.Fatalf("relay event %v", res)
	}
	src := filepath.Join(tl.tmp, "src")
	writeRandom(t, filepath.Join(src, "file.bin"), 32<<20, 51)
	send := tl.send(t, "b", r, filepath.Join(src, "file.bin"), aID)
	send.next(t, "accepted", 2*time.Minute)
	cutAt := time.Now()
	// The circuit that carried the data, among others that the sender
	// opened while trying to punch, which the quota ends too when open.
	closed := relay.next(t, "circuit_closed", time.Minute)
	for closed.str("reason") != "quota" || closed.num("bytes") < 1<<20 {
		t.Logf("circuit closed: %v", closed)
		closed = relay.next(t, "circuit_closed", time.Minute)
	}
	err := send.wait(t, time.Minute)
	msg := strings.TrimSpace(send.stderr.String())
	t.Logf("relay ended the circuit after %d bytes, %.1fs; sender exited %.1fs after its accept: %s",
		closed.num("bytes"), closed["seconds"], time.Since(cutAt).Seconds(), msg)
	if err == nil {
		t.Fatal("a send over the quota succeeded")
	}
	if want := "the relay's daily quota for this peer is used up"; !strings.Contains(msg, want) {
		t.Fatalf("sender's message lacks %q", want)
	}
	if closed.num("bytes") < 8<<20 || closed.num("bytes") > 10<<20 {
		t.Fatalf("circuit carried %d bytes under a quota of 8 MiB", closed.num("bytes"))
	}

	// Sending again the same day is refused at once, with the same reason.
	again := time.Now()
	send = tl.send(t, "b", r, filepath.Join(src, "file.bin"), aID)
	err = send.wait(t, time.Minute)
	msg = strings.TrimSpace(send.stderr.String())
	t.Logf("a second send failed after %.1fs: %s", time.Since(again).Seconds(), msg)
	if err == nil {
		t.Fatal("a second send over the quota succeeded")
	}
	if want := "the relay's daily quota for this peer is used up"; !strings.Contains(msg, want) {
		t.Fatalf("sender's message lacks %q", want)
	}
	if refused := relay.next(t, "circuit_refused", 10*time.Second); refused.str("reason") != "quota" {
		t.Fatalf("relay's refusal %v, want the quota", refused)
	}
}

// TestRelayTeamStartup: a relay refuses to start unless told whom to
// serve; --open starts it with a warning.
func TestRelayTeamStartup(t *testing.T) {
	home := t.TempDir()
	_, errOut, err := dshare(t, 20*time.Second, "relay", "--home", home, "--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
	want := "dshare: a relay serves only the peers it is told to: pass --allow PEER or --allow-file FILE, or --open to serve anyone\n"
	if err == nil || errOut != want {
		t.Fatalf("relay without an allow-list: %v, stderr %q, want exit 2 and %q", err, errOut, want)
	}
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("%v, want exit code 2", err)
	}

	l := newLab(t)
	ns := l.ns("open")
	p := start(t, inNS(ns), "relay", "--open", "--home", home, "--json", "--listen", "/ip4/127.0.0.1/udp/4747/quic-v1")
	ev := p.next(t, "listening", 20*time.Second)
	if ev["open"] != true {
		t.Fatalf("listening event %v, want open", ev)
	}
	stop(t, p)
	if !strings.Contains(p.stderr.String(), "warning: --open lets any peer") {
		t.Fatalf("no warning for --open:\n%s", p.stderr)
	}
}

// stop interrupts p and waits for it to exit.
func stop(t *testing.T, p *proc) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	_ = p.wait(t, 20*time.Second)
}
