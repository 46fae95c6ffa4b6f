package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func idOf(t *testing.T, home string) string {
	t.Helper()
	out, errOut, err := dshare(t, 10*time.Second, "id", "--home", home)
	if err != nil {
		t.Fatalf("id: %v\n%s", err, errOut)
	}
	return strings.TrimSpace(out)
}

// TestFromAndTrusted checks --from and the trusted-peers list: offers from
// other peers are refused before their manifest is read, and trusted
// peers are accepted with nobody at a terminal to ask.
func TestFromAndTrusted(t *testing.T) {
	tmp := t.TempDir()
	friend, stranger := filepath.Join(tmp, "friend"), filepath.Join(tmp, "stranger")
	src := filepath.Join(tmp, "src", "note.txt")
	writeRandom(t, src, 70_000, 1)

	t.Run("from", func(t *testing.T) {
		out := t.TempDir()
		recv, addr := receiver(t, t.TempDir(), out, "--yes", "--from", idOf(t, friend))
		_, errOut, err := dshare(t, 30*time.Second, "send", "--home", stranger, "--offline", src, addr)
		if err == nil || !strings.Contains(errOut, "not authorized") {
			t.Fatalf("stranger's send: %v\n%s", err, errOut)
		}
		ev := recv.next(t, "rejected", 10*time.Second)
		if ev.num("code") != 4 || ev.str("peer") != idOf(t, stranger) {
			t.Fatalf("rejected event %v, want code 4 (unauthorized) for the stranger", ev)
		}
		if _, errOut, err := dshare(t, 30*time.Second, "send", "--home", friend, "--offline", src, addr); err != nil {
			t.Fatalf("friend's send: %v\n%s", err, errOut)
		}
		// The stranger's offer was never read: the first offer event is
		// the friend's.
		if ev := recv.next(t, "offer", 10*time.Second); ev.str("peer") != idOf(t, friend) {
			t.Fatalf("offer event %v", ev)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 1 {
			t.Fatalf("target holds %d entries, want note.txt only", len(entries))
		}
	})

	t.Run("trusted", func(t *testing.T) {
		home, out := t.TempDir(), t.TempDir()
		if _, errOut, err := dshare(t, 10*time.Second, "trust", "--home", home, idOf(t, friend), "my laptop"); err != nil {
			t.Fatalf("trust: %v\n%s", err, errOut)
		}
		// No --yes and no terminal: only trusted peers get in.
		recv, addr := receiver(t, home, out)
		if _, errOut, err := dshare(t, 30*time.Second, "send", "--home", stranger, "--offline", src, addr); err == nil {
			t.Fatalf("an untrusted peer was accepted without asking\n%s", errOut)
		}
		if ev := recv.next(t, "offer", 10*time.Second); ev["trusted"] != false {
			t.Fatalf("stranger's offer event %v", ev)
		}
		if _, errOut, err := dshare(t, 30*time.Second, "send", "--home", friend, "--offline", src, addr); err != nil {
			t.Fatalf("trusted peer's send: %v\n%s", err, errOut)
		}
		if ev := recv.next(t, "offer", 10*time.Second); ev["trusted"] != true {
			t.Fatalf("friend's offer event %v", ev)
		}
		// The receiver tidies its staging folder after telling the
		// sender; its own done event comes after that.
		recv.next(t, "done", 10*time.Second)
		sameTree(t, filepath.Dir(src), out)
	})
}

// TestMaxBytes refuses an offer over --max-bytes at offer time.
func TestMaxBytes(t *testing.T) {
	src, out := filepath.Join(t.TempDir(), "big.bin"), t.TempDir()
	writeRandom(t, src, 3<<20, 2)
	_, addr := receiver(t, t.TempDir(), out, "--yes", "--max-bytes", "2M")
	_, errOut, err := dshare(t, 30*time.Second, "send", "--home", t.TempDir(), "--offline", src, addr)
	if err == nil || !strings.Contains(errOut, "too large") || !strings.Contains(errOut, "at most 2.0 MiB") {
		t.Fatalf("send of 3 MiB to a 2 MiB receiver: %v\n%s", err, errOut)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("a refused offer wrote %d entries", len(entries))
	}
}

// smallDisk mounts a tmpfs of size bytes for the test.
func smallDisk(t *testing.T, size int64) string {
	t.Helper()
	needRoot(t, "to mount a small filesystem")
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "dshare-test", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestDiskSpace checks both ends of running out of disk: an offer that
// cannot fit is refused at once, and a disk that fills up mid-transfer
// stops it with a clear error, keeps the partial file, and resumes once
// there is room again.
func TestDiskSpace(t *testing.T) {
	disk := smallDisk(t, 256<<20)
	out := filepath.Join(disk, "in")
	tmp := t.TempDir()
	srcDir := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(srcDir, "big.bin"), 200<<20, 4)
	writeRandom(t, filepath.Join(tmp, "huge.bin"), 300<<20, 5)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes")

	_, errOut, err := dshare(t, 30*time.Second, "send", "--home", filepath.Join(tmp, "hs"), "--offline", filepath.Join(tmp, "huge.bin"), addr)
	if err == nil || !strings.Contains(errOut, "not enough disk space") {
		t.Fatalf("300 MiB offer to a 256 MiB disk: %v\n%s", err, errOut)
	}

	// The 200 MiB offer fits. Hold the link once it starts, fill the
	// disk behind the receiver's back, then let the data through.
	proxy := newUDPProxy(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: udpPort(t, addr)})
	viaProxy := "/ip4/127.0.0.1/udp/" + strconv.Itoa(proxy.port()) + "/quic-v1/p2p/" + peerOf(addr)
	args := []string{"send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", filepath.Join(srcDir, "big.bin"), viaProxy}
	send := start(t, nil, args...)
	send.next(t, "accepted", 30*time.Second)
	proxy.blackhole.Store(true)
	filler := filepath.Join(disk, "filler")
	writeRandom(t, filler, 150<<20, 6)
	proxy.blackhole.Store(false)
	if err := send.wait(t, time.Minute); err == nil || !strings.Contains(send.stderr.String(), "not enough disk space") {
		t.Fatalf("send onto a full disk: %v\n%s", err, send.stderr)
	}
	ev := recv.next(t, "failed", 10*time.Second)
	if ev.num("code") != 7 {
		t.Fatalf("receiver's failed event %v, want code 7 (no space)", ev)
	}
	if _, err := os.Stat(filepath.Join(out, "big.bin")); err == nil {
		t.Fatal("a partial file appeared under its final name")
	}
	if parts := partFiles(t, out); len(parts) != 1 {
		t.Fatalf("the partial file was not kept: %q", parts)
	}

	// Room again: the same command resumes.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	stdout, errOut, err := dshare(t, time.Minute, args...)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, errOut)
	}
	done := lastEvent(t, stdout)
	if done.num("skipped") == 0 {
		t.Fatalf("the resume sent everything again: %v", done)
	}
	t.Logf("resumed after the disk filled: skipped %d, sent %d bytes", done.num("skipped"), done.num("sent"))
	sameTree(t, srcDir, out)
}
