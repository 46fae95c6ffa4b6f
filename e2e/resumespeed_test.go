package e2e

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A resume starts sending what is missing at once: what the receiver
// holds is re-verified in the background, and the sender hashes the held
// chunks only after the missing ones, so neither side reads the held
// part before the first new byte.
func TestResumeStartsAtOnce(t *testing.T) {
	size := int64(4 << 30)
	if testing.Short() {
		size = 1 << 30
	}
	held := size / 4 * 3
	src, out, tmp := t.TempDir(), t.TempDir(), t.TempDir()
	file := filepath.Join(src, "big.bin")
	writeRandom(t, file, size, 11)
	recv, addr := receiver(t, filepath.Join(tmp, "hr"), out, "--yes")
	args := []string{"send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", file, addr}

	first := start(t, nil, args...)
	for {
		ev := recv.next(t, "progress", 5*time.Minute)
		if int64(ev.num("bytes")) >= held {
			break
		}
	}
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	_ = first.wait(t, 30*time.Second)

	stdout, stderr, err := dshare(t, 10*time.Minute, args...)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr)
	}
	done := lastEvent(t, stdout)
	firstByte := done["first_byte"].(float64)
	t.Logf("%d MiB held of %d MiB: the resume skipped %d MiB, sent %d MiB, first byte after %.3f s",
		held>>20, size>>20, done.num("skipped")>>20, done.num("sent")>>20, firstByte)
	if int64(done.num("skipped")) < held {
		t.Errorf("skipped %d bytes, at least %d were held", done.num("skipped"), held)
	}
	if firstByte > 1 {
		t.Errorf("the resume sent its first byte after %.3f s, want within 1 s", firstByte)
	}
	sameTree(t, src, out)
}
