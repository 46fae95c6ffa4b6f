package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Exit codes, as the README documents them.
const (
	exitFailed      = 1
	exitUsage       = 2
	exitRejected    = 3
	exitInterrupted = 4
)

// ran is one finished dshare process.
type ran struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runIn runs dshare with a prefix (e.g. "ip netns exec NS") until it
// exits, failing the test if it outlives limit.
func runIn(t *testing.T, prefix []string, limit time.Duration, args ...string) ran {
	t.Helper()
	argv := append(append([]string{}, prefix...), bin("dshare"))
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("dshare %s still ran after %v\nstderr: %s", strings.Join(args, " "), limit, errb.String())
	}
	r := ran{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

// oneSentence checks that stderr's last line is one "dshare: ..." error
// sentence holding want, printed once, with no Go quoting or escapes.
func oneSentence(t *testing.T, stderr, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "dshare: ") || !strings.Contains(last, want) {
		t.Fatalf("last line of stderr %q, want a dshare error saying %q\n%s", last, want, stderr)
	}
	if strings.Count(stderr, want) != 1 {
		t.Errorf("the error is printed more than once:\n%s", stderr)
	}
	for _, bad := range []string{`\"`, `\n`, "rejected: rejected", "code: 0x"} {
		if strings.Contains(last, bad) {
			t.Errorf("the error holds %q: %s", bad, last)
		}
	}
}

// TestNoLAN: on a machine with only loopback, every way of sending ends
// at once with a sentence that says why, and no library log lines.
func TestNoLAN(t *testing.T) {
	l := newLab(t)
	ns := l.ns("lo") // loopback only: no interface can multicast, no route anywhere
	tmp := t.TempDir()
	file := filepath.Join(tmp, "f.bin")
	writeRandom(t, file, 100<<10, 1)
	const id = "12D3KooWJ8dqPaD5DgqNRCG8TWtXxNyq7tTRnsVv3Npc3gaKSxd1"
	home := filepath.Join(tmp, "home")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no peer", nil, "no network interface here reaches a local network"},
		{"no peer, LAN only", []string{"--lan-only"}, "no network interface here reaches a local network"},
		{"peer ID", []string{id}, "the DHT cannot be reached"},
		{"peer ID, LAN only", []string{id, "--lan-only"}, "cannot be looked for"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"send", "--home", home, file}, c.args...)
			r := runIn(t, inNS(ns), 5*time.Second, args...)
			if r.code != exitFailed {
				t.Fatalf("exit code %d, want %d\n%s", r.code, exitFailed, r.stderr)
			}
			oneSentence(t, r.stderr, c.want)
			if strings.Contains(r.stderr, "[WARN]") || strings.Contains(r.stderr, "\tERROR\t") {
				t.Errorf("library log lines reached the terminal:\n%s", r.stderr)
			}
			t.Logf("%s: exit %d after %v: %s", c.name, r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
		})
	}
}

// lanNoInternet builds two hosts on one bridge whose default route leads
// to a router that drops everything: a home network whose uplink is down.
// Nothing leaves the lab; the DHT's dials wait on silence.
func lanNoInternet(t *testing.T) (a, b string) {
	l := newLab(t)
	br := l.bridge("br")
	a, b, gw := l.ns("a"), l.ns("b"), l.ns("gw")
	l.plug(a, br, "eth0", "10.197.0.1/24")
	l.plug(b, br, "eth0", "10.197.0.2/24")
	l.plug(gw, br, "eth0", "10.197.0.254/24")
	if out, err := exec.Command("ip", "netns", "exec", gw, "sysctl", "-qw", "net.ipv4.ip_forward=0").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	l.ip("-n", a, "route", "add", "default", "via", "10.197.0.254")
	l.ip("-n", b, "route", "add", "default", "via", "10.197.0.254")
	return a, b
}

// TestLANNoInternet: on a LAN whose internet is down, a default send (no
// --lan-only) is as quick as on any LAN, and so is a "no".
func TestLANNoInternet(t *testing.T) {
	a, b := lanNoInternet(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "f.bin")
	writeRandom(t, file, 100<<10, 2)

	recvIn := func(home, dir string, extra ...string) (*proc, string) {
		p := start(t, inNS(a), append([]string{"recv", "--home", home, "--json", "--dir", dir}, extra...)...)
		return p, p.next(t, "listening", 10*time.Second).str("peer")
	}

	out := filepath.Join(tmp, "out")
	recv, id := recvIn(filepath.Join(tmp, "ha"), out, "--yes")
	for _, c := range []struct {
		name string
		args []string
	}{{"no peer", nil}, {"peer ID", []string{id}}} {
		t.Run(c.name, func(t *testing.T) {
			_ = os.RemoveAll(filepath.Join(out, "f.bin"))
			r := runIn(t, inNS(b), 10*time.Second, append([]string{"send", "--home", filepath.Join(tmp, "hb"), "--json", file}, c.args...)...)
			if r.code != 0 {
				t.Fatalf("send: exit %d\n%s", r.code, r.stderr)
			}
			if fileHash(t, file) != fileHash(t, filepath.Join(out, "f.bin")) {
				t.Fatal("the received file differs")
			}
			t.Logf("%s: sent and exited in %v", c.name, r.took.Round(time.Millisecond))
			if r.took > 2*time.Second {
				t.Errorf("a 100 KiB send on the LAN took %v from start to exit, want at most 2 s", r.took)
			}
		})
	}
	_ = recv.cmd.Process.Signal(syscall.SIGINT)
	if err := recv.wait(t, 10*time.Second); err != nil {
		t.Fatalf("an idle receiver stopped by Ctrl-C: %v, want exit 0\n%s", err, recv.stderr)
	}

	t.Run("declined", func(t *testing.T) {
		// No terminal to ask and no --yes: the receiver says no at once.
		_, id := recvIn(filepath.Join(tmp, "ha2"), filepath.Join(tmp, "out2"))
		r := runIn(t, inNS(b), 10*time.Second, "send", "--home", filepath.Join(tmp, "hb"), file, id)
		if r.code != exitRejected {
			t.Fatalf("exit code %d, want %d\n%s", r.code, exitRejected, r.stderr)
		}
		oneSentence(t, r.stderr, "rejected the offer")
		t.Logf("declined: exited %v after start: %s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
		if r.took > time.Second {
			t.Errorf("the receiver's no reached the sender %v after it started, want within 1 s", r.took)
		}
	})
}

// TestInterruptLooking: Ctrl-C while send looks for its receiver ends it
// at once, with the exit code for an interruption and a JSON event.
func TestInterruptLooking(t *testing.T) {
	_, b := lanNoInternet(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "f.bin")
	writeRandom(t, file, 1<<10, 3)
	for _, c := range []struct {
		name string
		args []string
	}{{"no peer", nil}, {"peer ID", []string{"12D3KooWJ8dqPaD5DgqNRCG8TWtXxNyq7tTRnsVv3Npc3gaKSxd1"}}} {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, inNS(b), append([]string{"send", "--home", filepath.Join(tmp, "h"), "--json", "--wait", "60s", file}, c.args...)...)
			p.next(t, "looking", 10*time.Second)
			sent := time.Now()
			// ip netns exec execs dshare in place: the signal reaches it.
			if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			ev := p.next(t, "error", 5*time.Second)
			err := p.wait(t, 5*time.Second)
			took := time.Since(sent)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
				t.Fatalf("exit %v, want code %d\n%s", err, exitInterrupted, p.stderr)
			}
			if ev.str("kind") != "interrupted" {
				t.Fatalf("error event %v, want kind interrupted", ev)
			}
			if took > time.Second {
				t.Errorf("Ctrl-C ended send after %v, want at once", took)
			}
		})
	}
}

// TestConventions: usage mistakes exit 2 with one line and nothing on
// stdout; help spells flags --flag; --version works; a failure is a JSON
// event too; bad sources are found before anything is offered.
func TestConventions(t *testing.T) {
	tmp := t.TempDir()
	r := runIn(t, nil, 10*time.Second, "send", "--bogus", "x")
	if r.code != exitUsage || r.stdout != "" {
		t.Fatalf("a bad flag: exit %d, stdout %q, want exit %d and nothing on stdout", r.code, r.stdout, exitUsage)
	}
	oneSentence(t, r.stderr, "flag provided but not defined")
	if r := runIn(t, nil, 10*time.Second, "frobnicate"); r.code != exitUsage {
		t.Fatalf("an unknown command: exit %d, want %d", r.code, exitUsage)
	}

	r = runIn(t, nil, 10*time.Second, "recv", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "\n  --dir DIR") || strings.Contains(r.stdout, "\n  -dir") {
		t.Fatalf("recv --help: exit %d, want --flag spelling:\n%s", r.code, r.stdout)
	}
	if !strings.Contains(r.stdout, "3 rejected") {
		t.Errorf("help does not document the exit codes:\n%s", r.stdout)
	}
	r = runIn(t, nil, 10*time.Second, "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "dshare ") {
		t.Fatalf("--version: exit %d, %q", r.code, r.stdout)
	}

	const addr = "/ip4/127.0.0.1/udp/9/quic-v1/p2p/12D3KooWJ8dqPaD5DgqNRCG8TWtXxNyq7tTRnsVv3Npc3gaKSxd1"
	missing := filepath.Join(tmp, "missing.txt")
	r = runIn(t, nil, 10*time.Second, "send", "--home", filepath.Join(tmp, "h"), "--offline", "--json", missing, addr)
	if r.code != exitFailed {
		t.Fatalf("a missing source: exit %d, want %d\n%s", r.code, exitFailed, r.stderr)
	}
	oneSentence(t, r.stderr, "does not exist")
	if ev := lastEvent(t, r.stdout); ev.str("event") != "error" || ev.num("exit") != exitFailed || ev.str("error") == "" {
		t.Fatalf("last JSON event %v, want an error event with exit %d", ev, exitFailed)
	}

	// A peer ID with a typo is neither a file nor an ID: said so, at once.
	r = runIn(t, nil, 10*time.Second, "send", "--home", filepath.Join(tmp, "h"), "--offline", missing, "12D3KooWJ8dqPaD5DgqNRCG8TWtXxNyq7tTRnsVv3Npc3gaKSxd0")
	if r.code != exitUsage {
		t.Fatalf("a mistyped peer ID: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	oneSentence(t, r.stderr, "neither a file nor a valid peer ID")
}

// TestUnreadableSource: a file the sender cannot read is reported before
// the offer, so the receiver is never asked and keeps nothing.
func TestUnreadableSource(t *testing.T) {
	var prefix []string
	if os.Geteuid() == 0 {
		// root reads everything: run the sender as nobody.
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("setpriv (util-linux) is needed to drop root")
		}
		prefix = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
	}
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} { // nobody must reach the files
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "ok.bin"), 1000, 4)
	writeRandom(t, filepath.Join(src, "secret.bin"), 1000, 5)
	if err := os.Chmod(filepath.Join(src, "secret.bin"), 0); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(tmp, "hs")
	if err := os.MkdirAll(home, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(home, 0o777)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), filepath.Join(tmp, "out"), "--yes")
	r := runIn(t, prefix, 10*time.Second, "send", "--home", home, "--offline", src, addr)
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitFailed, r.stderr)
	}
	oneSentence(t, r.stderr, "secret.bin: permission denied")
	select {
	case ev := <-recv.events:
		t.Fatalf("the receiver heard of the send: %v", ev)
	default:
	}
}

// TestRecvChecksItsPlace: recv refuses at startup a directory it cannot
// write, and a home another receiver already runs with.
func TestRecvChecksItsPlace(t *testing.T) {
	tmp := t.TempDir()
	home := filepath.Join(tmp, "h")
	first, _ := receiver(t, home, filepath.Join(tmp, "out"))
	r := runIn(t, nil, 10*time.Second, "recv", "--home", home, "--offline", "--dir", filepath.Join(tmp, "out2"))
	if r.code != exitFailed {
		t.Fatalf("a second receiver on one home: exit %d, want %d\n%s", r.code, exitFailed, r.stderr)
	}
	oneSentence(t, r.stderr, "already runs with the identity in")
	_ = first

	needRoot(t, "to mount a read-only tmpfs")
	ro := filepath.Join(tmp, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", ro).Run() })
	r = runIn(t, nil, 10*time.Second, "recv", "--home", filepath.Join(tmp, "h2"), "--offline", "--dir", ro)
	if r.code != exitFailed {
		t.Fatalf("recv into a read-only directory: exit %d, want %d\n%s", r.code, exitFailed, r.stderr)
	}
	oneSentence(t, r.stderr, "cannot receive into "+ro+": read-only file system")
}

// TestSenderInterruptTold: Ctrl-C on a sender mid-transfer exits 4, and
// the receiver says that the sender stopped, not that the network failed.
func TestSenderInterruptTold(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "big.bin")
	writeRandom(t, file, 16<<20, 6)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), filepath.Join(tmp, "out"), "--yes")
	proxy := newUDPProxy(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udpPort(t, addr)})
	proxy.delayMS.Store(1) // slow enough that Ctrl-C comes mid-transfer
	via := "/ip4/127.0.0.1/udp/" + strconv.Itoa(proxy.port()) + "/quic-v1/p2p/" + peerOf(addr)
	send := start(t, nil, "send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", file, via)
	for send.next(t, "progress", time.Minute).num("bytes") == 0 {
	}
	if err := send.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	ev := send.next(t, "error", 5*time.Second)
	err := send.wait(t, 5*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted || ev.str("kind") != "interrupted" {
		t.Fatalf("interrupted send: %v, event %v, want exit %d\n%s", err, ev, exitInterrupted, send.stderr)
	}
	failed := recv.next(t, "failed", 10*time.Second)
	if failed.num("code") != 13 { // canceled
		t.Fatalf("receiver's failed event %v, want code 13 (canceled)", failed)
	}
	if !strings.Contains(recv.stderr.String(), "stopped sending") {
		t.Fatalf("the receiver does not say the sender stopped:\n%s", recv.stderr)
	}
}

// TestPairingLAN: a sender names the receiver by its short code or its
// ticket on a LAN with no DHT; both show the same words. A wrong code
// finds no receiver and no offer is shown; a mistyped code or ticket is
// caught before anything is sent.
func TestPairingLAN(t *testing.T) {
	l := newLab(t)
	br := l.bridge("br")
	a, b := l.ns("a"), l.ns("b")
	l.plug(a, br, "eth0", "10.196.0.1/24")
	l.plug(b, br, "eth0", "10.196.0.2/24")
	tmp := t.TempDir()
	file := filepath.Join(tmp, "f.bin")
	writeRandom(t, file, 300<<10, 7)
	out := filepath.Join(tmp, "out")
	recv := start(t, inNS(a), "recv", "--home", filepath.Join(tmp, "ha"), "--json", "--lan-only", "--yes", "--dir", out)
	listening := recv.next(t, "listening", 10*time.Second)
	code, ticket := listening.str("code"), listening.str("ticket")
	if len(strings.Split(code, "-")) != 4 || !strings.HasPrefix(ticket, "dshare1") {
		t.Fatalf("listening event without a code and a ticket: %v", listening)
	}
	send := func(target string, extra ...string) ran {
		args := append([]string{"send", "--home", filepath.Join(tmp, "hb"), "--json", "--lan-only", "--wait", "10s", file, target}, extra...)
		return runIn(t, inNS(b), 30*time.Second, args...)
	}

	// A valid code that is not this receiver's.
	words := strings.Split(code, "-")
	words[3] = map[bool]string{true: "zoo", false: "abandon"}[words[3] != "zoo"]
	wrong := strings.Join(words, "-")
	r := send(wrong)
	if r.code != exitFailed {
		t.Fatalf("a wrong code: exit %d\n%s", r.code, r.stderr)
	}
	oneSentence(t, r.stderr, "knows the code")

	// A typo in a word, and in the ticket: said at once, nothing sent.
	r = send(strings.Replace(code, "-", "-q", 1))
	if r.code != exitUsage {
		t.Fatalf("a mistyped code: exit %d\n%s", r.code, r.stderr)
	}
	oneSentence(t, r.stderr, "is not one of its words")
	typo := []byte(ticket)
	typo[20] = map[bool]byte{true: 'a', false: 'b'}[typo[20] != 'a']
	r = send(string(typo))
	if r.code != exitUsage {
		t.Fatalf("a mistyped ticket: exit %d\n%s", r.code, r.stderr)
	}
	oneSentence(t, r.stderr, "checksum does not match")

	for i, target := range []string{code, ticket} {
		_ = os.RemoveAll(filepath.Join(out, "f.bin"))
		r := send(target)
		if r.code != 0 {
			t.Fatalf("send by %s: exit %d\n%s", []string{"code", "ticket"}[i], r.code, r.stderr)
		}
		var senderWords string
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if strings.Contains(line, `"event":"paired"`) {
				senderWords = line
			}
		}
		// The receiver pairs before it sees any offer: the wrong code
		// above showed none.
		paired := nextBefore(t, recv, "paired", "offer", 10*time.Second)
		if w := paired.str("words"); w == "" || !strings.Contains(senderWords, `"words":"`+w+`"`) {
			t.Fatalf("verification words differ: receiver %q, sender %s", w, senderWords)
		}
		offer := recv.next(t, "offer", 10*time.Second)
		if offer.str("words") != paired.str("words") {
			t.Fatalf("the offer does not carry the pairing's words: %v", offer)
		}
		recv.next(t, "done", 10*time.Second)
		if fileHash(t, file) != fileHash(t, filepath.Join(out, "f.bin")) {
			t.Fatal("the received file differs")
		}
	}
}

// nextBefore returns p's next event named name, failing if one named
// not comes first.
func nextBefore(t *testing.T, p *proc, name, not string, timeout time.Duration) event {
	t.Helper()
	e := hxNextOf(t, p, timeout, name, not)
	if e.str("event") == not {
		t.Fatalf("a %q event came before %q: %v", not, name, e)
	}
	return e
}

// TestPipe: tar c dir | dshare send - TICKET on one side, dshare recv
// --stdout > x.tar on the other; the bytes come out as they went in.
func TestPipe(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data.bin")
	writeRandom(t, data, 3<<20+17, 8)
	outFile := filepath.Join(tmp, "out.bin")
	out, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	recv := exec.Command(bin("dshare"), "recv", "--home", filepath.Join(tmp, "hr"), "--offline", "--yes", "--stdout",
		"--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
	recv.Stdout = out
	stderr, err := recv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recv.Process.Kill(); _ = recv.Wait() })
	// The ticket is on the receiver's stderr.
	tickets := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 4 && strings.HasPrefix(f[3], "dshare1") {
				select {
				case tickets <- f[3]:
				default:
				}
			}
		}
	}()
	var ticket string
	select {
	case ticket = <-tickets:
	case <-time.After(10 * time.Second):
		t.Fatal("no ticket printed")
	}
	in, err := os.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	send := exec.Command(bin("dshare"), "send", "--home", filepath.Join(tmp, "hs"), "--offline", "-", ticket)
	send.Stdin = in
	if b, err := send.CombinedOutput(); err != nil {
		t.Fatalf("send -: %v\n%s", err, b)
	}
	done := make(chan error, 1)
	go func() { done <- recv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("recv --stdout: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("recv --stdout did not exit after its one file")
	}
	if fileHash(t, data) != fileHash(t, outFile) {
		t.Fatal("the piped bytes came out different")
	}
}
