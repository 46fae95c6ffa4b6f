package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Folders of any size: descriptors, memory and time stay bounded and
// flat however many files a folder holds, and a resumed folder costs only
// what is missing.

// writeSmallTree writes n files of 1 KiB in n/100 directories.
func writeSmallTree(t *testing.T, root string, n int, seed uint64) {
	t.Helper()
	t.Logf("tree of %d files, seed %d", n, seed)
	buf := make([]byte, 1024)
	x := seed | 1
	for d := range n / 100 {
		dir := filepath.Join(root, fmt.Sprintf("d%04d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 100 {
			for i := 0; i < len(buf); i += 8 { // xorshift: fast and seeded
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				for j := range 8 {
					buf[i+j] = byte(x >> (8 * j))
				}
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d.bin", f)), buf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// watched is a process whose open descriptors and peak RSS are sampled
// until it ends. The peak is read from /proc (VmHWM), not from the exit
// status: a child's rusage counts the image of the test process it was
// forked from.
type watched struct {
	*proc
	maxFDs atomic.Int64
	maxRSS atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
}

func watch(p *proc) *watched {
	w := &watched{proc: p, stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		dir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if ents, err := os.ReadDir(dir); err == nil && int64(len(ents)) > w.maxFDs.Load() {
				w.maxFDs.Store(int64(len(ents)))
			}
			if hwm := procStatus(p.cmd.Process.Pid)["VmHWM"]; hwm > w.maxRSS.Load() {
				w.maxRSS.Store(hwm)
			}
			select {
			case <-w.stop:
				return
			case <-p.done:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// finish waits for the process and returns its peak RSS (as last
// sampled) and CPU time.
func (w *watched) finish(t *testing.T, timeout time.Duration) (rss int64, cpu time.Duration, err error) {
	t.Helper()
	err = w.wait(t, timeout)
	close(w.stop)
	w.wg.Wait()
	ru, ok := w.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage")
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return w.maxRSS.Load(), cpu, err
}

// countFiles drains a receiver's events, counting placed files.
func countFiles(p *proc) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		for e := range p.events {
			if e.str("event") == "file" {
				n.Add(1)
			}
		}
	}()
	return &n
}

// manyRun is one send of a tree to a fresh receiver under a limit of 1024
// descriptors on both sides.
type manyRun struct {
	files               int
	filesPerSec         float64
	sendFDs, recvFDs    int64
	sendRSS, recvRSS    int64
	recvCPU             time.Duration
	answer              time.Duration // from the offer to the receiver's answer
	skippedFiles, sentB uint64
}

var nofile = []string{"prlimit", "--nofile=1024"}

func TestManyFiles(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is needed to bound descriptors")
	}
	big := 100_000
	if testing.Short() {
		big = 20_000
	}
	const tiny, small = 1_000, 10_000
	tmp := t.TempDir()
	srcTiny, srcSmall, srcBig := filepath.Join(tmp, "s1k"), filepath.Join(tmp, "s10k"), filepath.Join(tmp, "sbig")
	writeSmallTree(t, srcTiny, tiny, 3)
	writeSmallTree(t, srcSmall, small, 1)
	writeSmallTree(t, srcBig, big, 2)

	run := func(name, src string, killAt int) manyRun {
		t.Helper()
		out := filepath.Join(tmp, "out-"+name)
		home := filepath.Join(tmp, "hr-"+name)
		rp := start(t, nofile, "recv", "--home", home, "--offline", "--json", "--yes", "--dir", out,
			"--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
		ev := rp.next(t, "listening", 10*time.Second)
		addr := ev["addrs"].([]any)[0].(string)
		recv := watch(rp)
		placed := countFiles(rp)
		args := []string{"send", "--home", filepath.Join(tmp, "hs-"+name), "--offline", "--json", src, addr}
		var r manyRun
		r.files = big
		if killAt > 0 {
			first := watch(start(t, nofile, args...))
			for placed.Load() < int64(killAt) {
				select {
				case <-first.done:
					t.Fatalf("the send ended before %d files were placed: %v\n%s", killAt, first.err, first.stderr)
				case <-time.After(10 * time.Millisecond):
				}
			}
			_ = first.cmd.Process.Signal(syscall.SIGKILL)
			_, _, _ = first.finish(t, 30*time.Second)
			t.Logf("%s: sender killed with %d of %d files placed", name, placed.Load(), big)
		}
		send := watch(start(t, nofile, args...))
		send.next(t, "sending", time.Minute)
		offered := time.Now()
		send.next(t, "accepted", 5*time.Minute)
		r.answer = time.Since(offered)
		done := send.next(t, "done", 10*time.Minute)
		var err error
		r.sendRSS, _, err = send.finish(t, time.Minute)
		if err != nil {
			t.Fatalf("%s: send: %v\n%s", name, err, send.stderr)
		}
		r.filesPerSec = float64(done.num("files")) / done["seconds"].(float64)
		r.skippedFiles, r.sentB = done.num("skipped_files"), done.num("sent")
		recvHWM := procStatus(rp.cmd.Process.Pid)["VmHWM"] // while it runs
		_ = rp.cmd.Process.Signal(syscall.SIGINT)
		r.recvRSS, r.recvCPU, _ = recv.finish(t, time.Minute)
		r.recvRSS = max(r.recvRSS, recvHWM)
		r.sendFDs, r.recvFDs = send.maxFDs.Load(), recv.maxFDs.Load()
		sameTree(t, src, filepath.Join(out, filepath.Base(src)))
		t.Logf("%s: %d files, %.0f files/s; answered in %v; peak fds send %d recv %d; peak RSS send %d MiB recv %d MiB; receiver CPU %v; skipped %d files, sent %d bytes",
			name, done.num("files"), r.filesPerSec, r.answer.Round(time.Millisecond), r.sendFDs, r.recvFDs,
			r.sendRSS>>20, r.recvRSS>>20, r.recvCPU.Round(10*time.Millisecond), r.skippedFiles, r.sentB)
		return r
	}

	r1 := run("1k", srcTiny, 0) // for the record: its rate is mostly start-up
	r10 := run("10k", srcSmall, 0)
	rBig := run("big", srcBig, 0)
	resumed := run("resumed", srcBig, big/2)

	for _, r := range []manyRun{r1, r10, rBig, resumed} {
		if r.sendFDs > 300 || r.recvFDs > 300 {
			t.Errorf("open descriptors peaked at %d (sender) and %d (receiver), want at most 300", r.sendFDs, r.recvFDs)
		}
		if r.sendRSS > 200<<20 || r.recvRSS > 200<<20 {
			t.Errorf("peak RSS %d MiB (sender) and %d MiB (receiver), want at most 200 MiB", r.sendRSS>>20, r.recvRSS>>20)
		}
	}
	if ratio := rBig.filesPerSec / r10.filesPerSec; ratio < 0.8 {
		t.Errorf("%d files at %.0f files/s, 10,000 at %.0f: ratio %.2f, want at least 0.8", big, rBig.filesPerSec, r10.filesPerSec, ratio)
	}
	// The resumed run: nothing placed is sent again, the answer is quick,
	// and the receiver's work for both runs stays near one run's.
	if min := uint64(big / 2); resumed.skippedFiles < min {
		t.Errorf("the resumed send skipped %d files, at least %d were placed before the kill", resumed.skippedFiles, min)
	}
	if max := uint64(big/2+big/10) * 1024; resumed.sentB > max {
		t.Errorf("the resumed send sent %d bytes, want at most %d", resumed.sentB, max)
	}
	if resumed.answer > 2*time.Second {
		t.Errorf("the receiver answered the resumed offer after %v, want within 2 s", resumed.answer)
	}
	if ratio := float64(resumed.recvCPU) / float64(rBig.recvCPU); ratio > 1.5 {
		t.Errorf("receiver CPU %v for the interrupted and resumed transfer, %v uninterrupted: %.2f×, want at most 1.5×",
			resumed.recvCPU, rBig.recvCPU, ratio)
	}
}
