package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ptyTerm is the master side of a pseudo-terminal: everything the program
// on the slave side writes is kept, unaltered, for the test to search.
type ptyTerm struct {
	master *os.File
	mu     sync.Mutex
	buf    []byte
	grew   chan struct{} // closed and replaced whenever buf grows or the reader stops
	ended  error         // why the reader stopped; nil while it runs
	done   chan struct{} // closed when the reader stops
}

// openPty opens a new pseudo-terminal of 40 rows and 100 columns and
// returns its master and its slave. It skips the test if the system has
// no /dev/ptmx.
func openPty(t *testing.T) (*ptyTerm, *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: open /dev/ptmx: %v", err)
	}
	fail := func(what string, err error) {
		master.Close()
		t.Fatalf("pseudo-terminal: %s: %v", what, err)
	}
	rc, err := master.SyscallConn()
	if err != nil {
		fail("raw conn", err)
	}
	var n int
	var ioErr error
	if err := rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr != nil {
			return
		}
		n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
	}); err != nil {
		fail("control", err)
	}
	if ioErr != nil {
		fail("unlock or number", ioErr)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		fail("open slave", err)
	}
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		slave.Close()
		fail("window size", err)
	}
	pt := &ptyTerm{master: master, grew: make(chan struct{}), done: make(chan struct{})}
	go pt.read()
	return pt, slave
}

func (pt *ptyTerm) read() {
	defer close(pt.done)
	b := make([]byte, 32<<10)
	for {
		n, err := pt.master.Read(b)
		pt.mu.Lock()
		pt.buf = append(pt.buf, b[:n]...)
		if err != nil {
			pt.ended = err
		}
		close(pt.grew)
		pt.grew = make(chan struct{})
		pt.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// transcript returns everything read so far.
func (pt *ptyTerm) transcript() string {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return string(pt.buf)
}

// typeKeys writes keys to the terminal, as if typed.
func (pt *ptyTerm) typeKeys(t *testing.T, keys string) {
	t.Helper()
	if _, err := pt.master.Write([]byte(keys)); err != nil {
		t.Fatalf("typing %q: %v", keys, err)
	}
}

// waitFor waits until what (a string or a *regexp.Regexp) appears in the
// transcript at or after offset after, and returns the match (for a
// regexp, its submatches) and the offset just past it. It fails the test,
// showing the whole transcript, if nothing matches within timeout.
func (pt *ptyTerm) waitFor(t *testing.T, what any, after int, timeout time.Duration) ([]string, int) {
	t.Helper()
	find := func(s []byte) ([]string, int) {
		switch w := what.(type) {
		case string:
			if i := strings.Index(string(s), w); i >= 0 {
				return []string{w}, i + len(w)
			}
		case *regexp.Regexp:
			if loc := w.FindSubmatchIndex(s); loc != nil {
				var m []string
				for i := 0; i < len(loc); i += 2 {
					if loc[i] < 0 {
						m = append(m, "")
					} else {
						m = append(m, string(s[loc[i]:loc[i+1]]))
					}
				}
				return m, loc[1]
			}
		default:
			t.Fatalf("waitFor: %T is neither a string nor a regexp", what)
		}
		return nil, -1
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		pt.mu.Lock()
		if after > len(pt.buf) {
			after = len(pt.buf)
		}
		m, end := find(pt.buf[after:])
		grew, ended := pt.grew, pt.ended
		pt.mu.Unlock()
		if m != nil {
			return m, after + end
		}
		if ended != nil {
			t.Fatalf("the terminal closed (%v) before %q appeared after offset %d; transcript:\n%s", ended, fmt.Sprint(what), after, pt.transcript())
		}
		select {
		case <-grew:
		case <-deadline.C:
			t.Fatalf("%q did not appear after offset %d within %v; transcript:\n%s", fmt.Sprint(what), after, timeout, pt.transcript())
		}
	}
}

// ptyRecv is "dshare recv" running on a pseudo-terminal.
type ptyRecv struct {
	*ptyTerm
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	ticket string
	dir    string
	offset int // just past the ticket line
}

var ptyTicketLine = regexp.MustCompile(`dshare send FILE (dshare1[a-z2-7]+)\r?\n`)

// startPtyRecv starts "dshare recv" with stdin, stdout and stderr on a new
// pseudo-terminal, as its controlling terminal, and waits for its ticket.
func startPtyRecv(t *testing.T) *ptyRecv {
	t.Helper()
	return startPtyRecvAt(t, "/ip4/127.0.0.1/udp/0/quic-v1")
}

// startPtyRecvAt is startPtyRecv listening on listen.
func startPtyRecvAt(t *testing.T, listen string) *ptyRecv {
	t.Helper()
	pt, slave := openPty(t)
	home, dir := t.TempDir(), t.TempDir()
	cmd := exec.Command(bin("dshare"), "recv", "--home", home, "--offline", "--dir", dir, "--listen", listen)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		pt.master.Close()
		t.Fatalf("start dshare recv on a terminal: %v", err)
	}
	slave.Close()
	r := &ptyRecv{ptyTerm: pt, cmd: cmd, exited: make(chan struct{}), dir: dir}
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.exited
		pt.master.Close()
		<-pt.done
		if t.Failed() || os.Getenv("DSHARE_PTY_TRANSCRIPT") != "" {
			// DSHARE_PTY_TRANSCRIPT=1 shows it for passing tests too.
			t.Logf("receiver terminal transcript (receiver exit: %v):\n%s", r.err, pt.transcript())
		}
	})
	m, off := pt.waitFor(t, ptyTicketLine, 0, 15*time.Second)
	r.ticket, r.offset = m[1], off
	t.Logf("receiver is up, ticket %s…", r.ticket[:min(len(r.ticket), 24)])
	return r
}

// ptySend starts "dshare send --json" of file to the ticket, with its own
// home, offline.
func ptySend(t *testing.T, file, ticket string) *proc {
	t.Helper()
	return start(t, nil, "send", "--home", t.TempDir(), "--offline", "--json", file, ticket)
}

// ptyExitOf waits for p to exit and returns its exit code.
func ptyExitOf(t *testing.T, p *proc, timeout time.Duration) int {
	t.Helper()
	err := p.wait(t, timeout)
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	t.Fatalf("sender: %v\n%s", err, p.stderr)
	return -1
}

func ptyRunning(p *proc) bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

const ptyPrompt = "Accept? [y/N] "

// TestPtyStrayEnterDoesNotAnswer: Enter pressed while the receiver is
// idle does not answer the question asked later: the offer stays open,
// and the "y" typed after the question accepts it.
func TestPtyStrayEnterDoesNotAnswer(t *testing.T) {
	r := startPtyRecv(t)
	src := filepath.Join(t.TempDir(), "note.bin")
	writeRandom(t, src, 200<<10, 11)

	// Two Enter presses while nothing is asked. The terminal echoes
	// them once its line discipline has taken them in.
	off := r.offset
	r.typeKeys(t, "\r\r")
	_, off = r.waitFor(t, "\r\n\r\n", off, 10*time.Second)

	s := ptySend(t, src, r.ticket)
	_, off = r.waitFor(t, regexp.MustCompile(`its screen must show: \S+ \S+ \S+`), off, 20*time.Second)
	_, off = r.waitFor(t, ptyPrompt, off, 20*time.Second)
	// The sender hears of a "no" within milliseconds; the question must
	// still be open now, and the receiver must not have refused anything.
	if !ptyRunning(s) {
		t.Fatalf("the sender ended (%v) while the question was still on the screen: a stray Enter answered it\n%s", s.err, s.stderr)
	}
	if strings.Contains(r.transcript(), "refused an offer") {
		t.Fatalf("the receiver refused the offer before anything was typed after the question")
	}
	r.typeKeys(t, "y\r")
	if code := ptyExitOf(t, s, 30*time.Second); code != 0 {
		t.Fatalf("sender exit code %d after \"y\", want 0 (a stray Enter answered the question?)\n%s", code, s.stderr)
	}
	_, _ = r.waitFor(t, regexp.MustCompile(`saved as:\r?\n  note\.bin\r?\n`), off, 20*time.Second)
	if fileHash(t, src) != fileHash(t, filepath.Join(r.dir, "note.bin")) {
		t.Fatal("the received file differs from the one sent")
	}
	if strings.Contains(r.transcript(), "refused an offer") {
		t.Fatalf("the receiver printed a refusal for an offer it accepted")
	}
}

// TestPtyWithdrawnPrompt: a sender that goes away while asked withdraws
// the question, and the answer to the next question reaches that next
// question (no reader left behind by the first swallows it).
func TestPtyWithdrawnPrompt(t *testing.T) {
	r := startPtyRecv(t)
	tmp := t.TempDir()
	src1, src2 := filepath.Join(tmp, "first.bin"), filepath.Join(tmp, "second.bin")
	writeRandom(t, src1, 100<<10, 21)
	writeRandom(t, src2, 150<<10, 22)

	s1 := ptySend(t, src1, r.ticket)
	_, off := r.waitFor(t, "first.bin", r.offset, 20*time.Second)
	_, off = r.waitFor(t, ptyPrompt, off, 20*time.Second)
	interrupted := time.Now()
	if err := s1.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	code := ptyExitOf(t, s1, 15*time.Second)
	t.Logf("sender 1 interrupted at the question: exit %d after %v, stderr %q", code,
		time.Since(interrupted).Round(time.Millisecond), strings.TrimSpace(s1.stderr.String()))
	if code != exitInterrupted {
		t.Errorf("sender 1 stopped by SIGINT at the question: exit code %d, want %d", code, exitInterrupted)
	}
	_, off = r.waitFor(t, "(withdrawn: the sender is gone)", off, 15*time.Second)
	t.Logf("the question was withdrawn %v after the interrupt", time.Since(interrupted).Round(time.Millisecond))

	s2 := ptySend(t, src2, r.ticket)
	_, off = r.waitFor(t, "second.bin", off, 20*time.Second)
	_, off = r.waitFor(t, ptyPrompt, off, 20*time.Second)
	if !ptyRunning(s2) {
		t.Fatalf("sender 2 ended (%v) before anything was typed at its question\n%s", s2.err, s2.stderr)
	}
	r.typeKeys(t, "y\r")
	if code := ptyExitOf(t, s2, 30*time.Second); code != 0 {
		t.Fatalf("sender 2 exit code %d after \"y\" at its question, want 0\n%s", code, s2.stderr)
	}
	_, _ = r.waitFor(t, regexp.MustCompile(`saved as:\r?\n  second\.bin\r?\n`), off, 20*time.Second)
	if fileHash(t, src2) != fileHash(t, filepath.Join(r.dir, "second.bin")) {
		t.Fatal("the second file arrived different")
	}
	if _, err := os.Stat(filepath.Join(r.dir, "first.bin")); err == nil {
		t.Error("the withdrawn offer's file was saved")
	}
}

var ptyRate = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?) ([KMGTPE]iB)/s`)

// TestPtyBarsAndNames: a 64 MiB transfer draws a byte counter against the
// total, never an absurd rate, and ends by naming the saved file.
func TestPtyBarsAndNames(t *testing.T) {
	// The data goes through a proxy that delays every datagram, so that
	// the transfer lasts long enough for the bars to draw a rate.
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	r := startPtyRecvAt(t, fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port))
	m, _ := r.waitFor(t, regexp.MustCompile(`as (12D3KooW\w+)`), 0, 10*time.Second)
	proxy := newUDPProxy(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	proxy.delayMS.Store(1)
	via := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1/p2p/%s", proxy.port(), m[1])
	const size = 8 << 20
	src := filepath.Join(t.TempDir(), "big.bin")
	writeRandom(t, src, size, 31)

	s := start(t, nil, "send", "--home", t.TempDir(), "--offline", "--json", src, via)
	_, off := r.waitFor(t, ptyPrompt, r.offset, 20*time.Second)
	r.typeKeys(t, "y\r")
	started := time.Now()
	if code := ptyExitOf(t, s, 50*time.Second); code != 0 {
		t.Fatalf("sender exit code %d, want 0\n%s", code, s.stderr)
	}
	t.Logf("8 MiB sent in %v after the answer", time.Since(started).Round(time.Millisecond))
	_, off = r.waitFor(t, "saved as:", off, 20*time.Second)
	_, _ = r.waitFor(t, regexp.MustCompile(`\n  big\.bin\r?\n`), off, 10*time.Second)
	if fileHash(t, src) != fileHash(t, filepath.Join(r.dir, "big.bin")) {
		t.Fatal("the received file differs from the one sent")
	}

	tr := r.transcript()
	if !strings.Contains(tr, "MiB / 8.0 MiB") {
		t.Errorf("no counter in MiB against the total (\"MiB / 8.0 MiB\") on the terminal")
	}
	if !regexp.MustCompile(`Received 1 file \(8\.0 MiB\) from 12D3KooW\w+, saved as:`).MatchString(tr) {
		t.Errorf("no summary line \"Received 1 file (8.0 MiB) from …, saved as:\"")
	}
	mult := map[string]float64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60}
	var rates []string
	for _, m := range ptyRate.FindAllStringSubmatch(tr, -1) {
		rates = append(rates, m[0])
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Errorf("rate %q: %v", m[0], err)
			continue
		}
		switch {
		case m[2] == "TiB" || m[2] == "PiB" || m[2] == "EiB":
			t.Errorf("absurd rate on the terminal: %q", m[0])
		case v*mult[m[2]] > 100*(1<<30):
			t.Errorf("rate above 100 GiB/s on the terminal: %q", m[0])
		}
	}
	if len(rates) == 0 {
		t.Errorf("no rate was drawn during a transfer of %v", time.Since(started).Round(time.Millisecond))
	} else {
		t.Logf("%d rates drawn; distinct: %v", len(rates), ptyDistinct(rates, 12))
	}
	if strings.Contains(tr, "TiB/s") || strings.Contains(tr, "PiB/s") || strings.Contains(tr, "EiB/s") {
		t.Errorf("a rate in TiB/s or above on the terminal")
	}
}

// ptyDistinct returns up to n distinct strings of ss, in order.
func ptyDistinct(ss []string, n int) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] && len(out) < n {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// TestPtyEndOfInput: after Ctrl-D nobody can answer; every later offer is
// declined at once instead of waiting on a question nobody sees.
func TestPtyEndOfInput(t *testing.T) {
	r := startPtyRecv(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "a.bin")
	writeRandom(t, src, 10<<10, 23)
	r.typeKeys(t, "\x04") // Ctrl-D on an empty line: end of input
	for i := range 2 {
		s := ptySend(t, src, r.ticket)
		if code := ptyExitOf(t, s, 20*time.Second); code != exitRejected {
			t.Fatalf("offer %d after the end of input: exit %d, want %d (declined)\n%s", i, code, exitRejected, s.stderr)
		}
		if !strings.Contains(s.stderr.String(), "input is closed") {
			t.Fatalf("offer %d: the sender is not told why:\n%s", i, s.stderr)
		}
	}
}
