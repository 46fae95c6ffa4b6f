package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// makeTree writes n small files spread over nested directories, plus
// empty directories, below dir.
func makeTree(t testing.TB, dir string, n int) {
	t.Helper()
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%7), fmt.Sprintf("e%d", i%3), fmt.Sprintf("f%04d.txt", i))
		writeRandom(t, p, int64(i*37%5000), uint64(i))
	}
	for _, d := range []string{"empty", "d1/empty-too", "x/y/z"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSendLargeFileAndTree(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	writeRandom(t, filepath.Join(src, "big.bin"), size, 1)
	makeTree(t, filepath.Join(src, "tree"), 1000)

	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes", "--once")
	stdout, stderr, err := dshare(t, 5*time.Minute, "send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json",
		filepath.Join(src, "big.bin"), filepath.Join(src, "tree"), addr)
	if err != nil {
		t.Fatalf("send: %v\n%s", err, stderr)
	}
	done := lastEvent(t, stdout)
	if done.str("event") != "done" || done.num("files") != 1001 {
		t.Fatalf("last event %v", done)
	}
	if err := recv.wait(t, 30*time.Second); err != nil {
		t.Fatalf("recv --once: %v\n%s", err, recv.stderr)
	}
	sameTree(t, src, out)

	// Progress events count confirmed bytes, never more than the total,
	// and never go backwards.
	var last uint64
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		ev := lastEvent(t, line)
		if ev.str("event") != "progress" {
			continue
		}
		if ev.num("bytes") < last || ev.num("bytes") > ev.num("total") {
			t.Fatalf("progress went from %d to %v", last, ev)
		}
		last = ev.num("bytes")
	}
	if want := done.num("bytes"); last != want {
		t.Fatalf("last progress %d, total %d", last, want)
	}
}

// TestReceiverPeakRSS sends a 4 GiB file and checks the receiver's peak
// resident memory. The source is sparse, so it costs no disk to make.
func TestReceiverPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 4 GiB")
	}
	const size = 4 << 30
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	f, err := os.Create(filepath.Join(src, "sparse.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes")
	if _, stderr, err := dshare(t, 10*time.Minute, "send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json",
		filepath.Join(src, "sparse.img"), addr); err != nil {
		t.Fatalf("send: %v\n%s", err, stderr)
	}
	recv.next(t, "done", 30*time.Second)
	// Read from /proc while it runs: rusage's maxrss of a child also
	// counts the parent's memory at the time of the fork.
	rss := peakRSS(t, recv.cmd.Process.Pid)
	t.Logf("receiver peak RSS for a 4 GiB file: %.1f MiB", float64(rss)/(1<<20))
	if rss <= 0 || rss > 200<<20 {
		t.Fatalf("receiver peak RSS %d bytes, want under 200 MiB", rss)
	}
	fi, err := os.Stat(filepath.Join(out, "sparse.img"))
	if err != nil || fi.Size() != size {
		t.Fatalf("received file: %v %v", fi, err)
	}
	if fileHash(t, filepath.Join(src, "sparse.img")) != fileHash(t, filepath.Join(out, "sparse.img")) {
		t.Fatal("received file differs")
	}
}

func TestRejectedWithoutTerminal(t *testing.T) {
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	writeRandom(t, filepath.Join(src, "a.txt"), 100, 1)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out) // no --yes, no terminal
	r := runIn(t, nil, time.Minute, "send", "--home", filepath.Join(tmp, "hs"), "--offline",
		filepath.Join(src, "a.txt"), addr)
	if r.code != exitRejected {
		t.Fatalf("exit code %d, want %d for a refusal\n%s", r.code, exitRejected, r.stderr)
	}
	oneSentence(t, r.stderr, "rejected the offer: the receiver has no terminal to ask")
	recv.next(t, "rejected", 5*time.Second)
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("rejected offer wrote %v", entries)
	}
}

func TestUnreachablePeer(t *testing.T) {
	src, tmp := t.TempDir(), t.TempDir()
	writeRandom(t, filepath.Join(src, "a.txt"), 10, 1)
	// A peer ID nobody listens for, at a loopback port nobody listens on.
	id, _, err := dshare(t, time.Minute, "id", "--home", filepath.Join(tmp, "other"))
	if err != nil {
		t.Fatal(err)
	}
	addr := "/ip4/127.0.0.1/udp/9/quic-v1/p2p/" + strings.TrimSpace(id)
	t0 := time.Now()
	_, stderr, err := dshare(t, time.Minute, "send", "--home", filepath.Join(tmp, "hs"), "--offline",
		filepath.Join(src, "a.txt"), addr)
	if err == nil {
		t.Fatal("send to nobody succeeded")
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Fatalf("took %v to give up on a peer that was never reached", d)
	}
	if !strings.Contains(stderr, "connect") {
		t.Fatalf("stderr: %q", stderr)
	}
}

func TestIdentityIsStable(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	a, _, err := dshare(t, time.Minute, "id", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := dshare(t, time.Minute, "id", "--home", home)
	if a != b || !strings.HasPrefix(a, "12D3KooW") {
		t.Fatalf("ids %q and %q", a, b)
	}
	fi, err := os.Stat(filepath.Join(home, "identity.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
}

func TestHelpAndUsage(t *testing.T) {
	out, _, err := dshare(t, time.Minute, "--help")
	if err != nil || !strings.Contains(out, "dshare send") {
		t.Fatalf("--help: %v %q", err, out)
	}
	if _, _, err := dshare(t, time.Minute, "frobnicate"); err == nil {
		t.Fatal("unknown command succeeded")
	}
	if _, stderr, err := dshare(t, time.Minute, "send", "--offline", "--home", t.TempDir()); err == nil || !strings.Contains(stderr, "PATH") {
		t.Fatalf("send without paths: %v %q", err, stderr)
	}
}

func TestInterruptStopsReceiver(t *testing.T) {
	tmp := t.TempDir()
	recv, _ := receiver(t, filepath.Join(tmp, "hr"), filepath.Join(tmp, "out"))
	if err := recv.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	recv.wait(t, 10*time.Second)
}
