package e2e

import (
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

const resumeSize = 512 << 20

// udpPort returns the UDP port of a quic-v1 multiaddr.
func udpPort(t testing.TB, addr string) int {
	t.Helper()
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.ValueForProtocol(ma.P_UDP)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(s)
	return n
}

func peerOf(addr string) string { return addr[strings.LastIndex(addr, "/p2p/")+5:] }

// TestLinkCut black-holes the path between sender and receiver for 5 s in
// the middle of a transfer; the send must finish without being re-run.
func TestLinkCut(t *testing.T) {
	size := int64(resumeSize)
	if testing.Short() {
		size = 64 << 20
	}
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	writeRandom(t, filepath.Join(src, "f.bin"), size, 3)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes", "--once")
	proxy := newUDPProxy(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udpPort(t, addr)})
	viaProxy := "/ip4/127.0.0.1/udp/" + strconv.Itoa(proxy.port()) + "/quic-v1/p2p/" + peerOf(addr)

	send := start(t, nil, "send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", filepath.Join(src, "f.bin"), viaProxy)
	send.next(t, "progress", 30*time.Second)
	proxy.blackhole.Store(true)
	time.Sleep(5 * time.Second)
	proxy.blackhole.Store(false)
	done := send.next(t, "done", 2*time.Minute)
	if err := send.wait(t, 30*time.Second); err != nil {
		t.Fatalf("send: %v\n%s", err, send.stderr)
	}
	if err := recv.wait(t, 30*time.Second); err != nil {
		t.Fatalf("recv: %v", err)
	}
	if proxy.dropped.Load() == 0 {
		t.Fatal("the cut dropped nothing: the transfer did not go through the proxy")
	}
	t.Logf("dropped %d datagrams during the cut; sessions %d, sent %d of %d bytes",
		proxy.dropped.Load(), done.num("sessions"), done.num("sent"), size)
	sameTree(t, src, out)
}

// sendAndKill runs a sender until the receiver has confirmed at least at
// bytes, then kills it with SIGKILL. It returns the bytes confirmed then.
func sendAndKill(t *testing.T, args []string, at uint64) uint64 {
	t.Helper()
	s := start(t, nil, args...)
	ev := s.next(t, "progress", 30*time.Second)
	for ev.num("bytes") < at {
		ev = s.next(t, "progress", 30*time.Second)
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.wait(t, 10*time.Second)
	return ev.num("bytes")
}

// TestSenderKilled kills the sender with SIGKILL at random points, five
// times, then lets it finish. What the receiver got in the killed runs
// plus what the last run sent must stay within 1.1 × the file size.
func TestSenderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 512 MiB six times")
	}
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(src, "f.bin")
	writeRandom(t, file, resumeSize, 4)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes", "--once")
	sendArgs := []string{"send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", file, addr}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range 5 {
		// Kill run i at a random point of the i-th sixth of the file, so
		// that every kill lands mid-transfer.
		at := uint64(resumeSize) / 6 * uint64(i)
		at += uint64(rng.Float64() * 0.9 * resumeSize / 6)
		sendAndKill(t, sendArgs, at)
	}
	stdout, stderr, err := dshare(t, 5*time.Minute, sendArgs...)
	if err != nil {
		t.Fatalf("final send: %v\n%s", err, stderr)
	}
	done := lastEvent(t, stdout)
	if err := recv.wait(t, 30*time.Second); err != nil {
		t.Fatalf("recv: %v", err)
	}
	sameTree(t, src, out)

	var killed uint64
	for range 5 {
		killed += recv.next(t, "failed", 5*time.Second).num("received")
	}
	total := killed + done.num("sent")
	t.Logf("received in killed runs %d, sent by the last run %d (skipped %d): %.3f × the file size",
		killed, done.num("sent"), done.num("skipped"), float64(total)/resumeSize)
	if float64(total) > 1.1*resumeSize {
		t.Fatalf("%d bytes went over the wire for a %d-byte file", total, resumeSize)
	}
}

// TestCorruptedPartialFile flips bytes inside confirmed ranges of the
// temporary file between runs; the result must still be byte-identical.
func TestCorruptedPartialFile(t *testing.T) {
	size := int64(resumeSize)
	if testing.Short() {
		size = 64 << 20
	}
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(src, "f.bin")
	writeRandom(t, file, size, 5)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes")
	sendArgs := []string{"send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", file, addr}

	confirmed := sendAndKill(t, sendArgs, uint64(size)/4)
	recv.cmd.Process.Signal(syscall.SIGINT) // the receiver leaves its state behind and exits
	_ = recv.wait(t, 30*time.Second)

	parts := partFiles(t, out)
	if len(parts) != 1 {
		t.Fatalf("want one temporary file, found %q", parts)
	}
	f, err := os.OpenFile(parts[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no temporary file: %v", err)
	}
	for _, off := range []int64{0, int64(confirmed) / 2, int64(confirmed) - 10} {
		b := make([]byte, 4)
		f.ReadAt(b, off)
		for i := range b {
			b[i] ^= 0xa5
		}
		f.WriteAt(b, off)
	}
	f.Close()
	if _, err := os.Stat(filepath.Join(out, "f.bin")); err == nil {
		t.Fatal("a partial file appeared under its final name")
	}

	recv2, addr2 := receiver(t, filepath.Join(tmp, "hr"), out, "--yes", "--once")
	sendArgs[len(sendArgs)-1] = addr2
	stdout, stderr, err := dshare(t, 5*time.Minute, sendArgs...)
	if err != nil {
		t.Fatalf("second send: %v\n%s", err, stderr)
	}
	done := lastEvent(t, stdout)
	if err := recv2.wait(t, 30*time.Second); err != nil {
		t.Fatalf("recv: %v", err)
	}
	t.Logf("confirmed before the kill %d; second run sent %d, skipped %d", confirmed, done.num("sent"), done.num("skipped"))
	if done.num("skipped") == 0 {
		t.Fatal("nothing was resumed")
	}
	sameTree(t, src, out)
}

// TestChangedSource modifies the source between runs: the result is the
// new content, never a mix of old and new bytes.
func TestChangedSource(t *testing.T) {
	t.Run("new mtime", func(t *testing.T) { testChangedSource(t, false) })
	// The received part changes and the modification time is put back,
	// so only the whole-file hash can tell.
	t.Run("same mtime", func(t *testing.T) { testChangedSource(t, true) })
}

func testChangedSource(t *testing.T, sameMTime bool) {
	size := int64(resumeSize)
	if testing.Short() {
		size = 64 << 20
	}
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(src, "f.bin")
	writeRandom(t, file, size, 6)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes", "--once")
	sendArgs := []string{"send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", file, addr}
	sendAndKill(t, sendArgs, uint64(size)/4)

	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 1<<20)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	for off := int64(0); off < size; off += 8 * int64(len(junk)) {
		f.WriteAt(junk, off)
	}
	f.Close()
	if sameMTime {
		if err := os.Chtimes(file, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}

	stdout, stderr, err := dshare(t, 5*time.Minute, sendArgs...)
	if err != nil {
		t.Fatalf("second send: %v\n%s", err, stderr)
	}
	if err := recv.wait(t, 30*time.Second); err != nil {
		t.Fatalf("recv: %v", err)
	}
	t.Logf("second run: %v", lastEvent(t, stdout))
	sameTree(t, src, out)
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestReceiverKilled kills the receiver with SIGKILL at random points,
// five times, restarting it each time with the same home, directory and
// address, while one sender keeps running and resumes by itself.
func TestReceiverKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 512 MiB through five receiver restarts")
	}
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(src, "f.bin")
	writeRandom(t, file, resumeSize, 7)
	listen := "/ip4/127.0.0.1/udp/" + strconv.Itoa(freeUDPPort(t)) + "/quic-v1"
	recvArgs := []string{"recv", "--home", filepath.Join(tmp, "hr"), "--offline", "--json", "--dir", out, "--yes", "--listen", listen}
	recv := start(t, nil, recvArgs...)
	addr := recv.next(t, "listening", 10*time.Second)["addrs"].([]any)[0].(string)

	send := start(t, nil, "send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", "--retry-for", "2m", file, addr)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for i := range 5 {
		at := uint64(resumeSize)/6*uint64(i) + uint64(rng.Float64()*0.9*resumeSize/6)
		for ev := send.next(t, "progress", time.Minute); ev.num("bytes") < at; {
			ev = send.next(t, "progress", time.Minute)
		}
		_ = recv.cmd.Process.Signal(syscall.SIGKILL)
		_ = recv.wait(t, 10*time.Second)
		recv = start(t, nil, recvArgs...)
		recv.next(t, "listening", 10*time.Second)
	}
	done := send.next(t, "done", 3*time.Minute)
	if err := send.wait(t, 30*time.Second); err != nil {
		t.Fatalf("send: %v\n%s", err, send.stderr)
	}
	sameTree(t, src, out)
	t.Logf("sent %d bytes in %d sessions for a %d-byte file: %.3f ×",
		done.num("sent"), done.num("sessions"), resumeSize, float64(done.num("sent"))/resumeSize)
	if float64(done.num("sent")) > 1.1*resumeSize {
		t.Fatalf("sent %d bytes for a %d-byte file", done.num("sent"), resumeSize)
	}
}
