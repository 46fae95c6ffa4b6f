package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startLink runs dshare-bench's link emulator towards a loopback UDP
// address and returns where senders should send. It stops when the test
// ends (its stdin closes) and logs what it did.
func startLink(t *testing.T, to string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin("dshare-bench"), append([]string{"link", "--to", to}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	lines := make(chan string, 2)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case l, ok := <-lines:
			if ok {
				t.Logf("link: %s", l)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
	})
	select {
	case l, ok := <-lines:
		var m map[string]string
		if !ok || json.Unmarshal([]byte(l), &m) != nil || m["listening"] == "" {
			t.Fatalf("the link emulator did not start: %q %s", l, stderr.String())
		}
		return m["listening"]
	case <-time.After(10 * time.Second):
		t.Fatalf("the link emulator did not start within 10 s: %s", stderr.String())
	}
	return ""
}

// TestLossyLink sends over an emulated long path that loses 1 % of its
// packets at random, as a poor Wi-Fi or a long-haul path does: the file
// arrives byte-identical in one session, and the data went over more than
// one connection (lanes), which is how the sender keeps such a path full.
// Speed is measured by dshare-bench, not here.
func TestLossyLink(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("loss seed %d", seed)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "f.bin"), 24<<20, seed)
	out := filepath.Join(tmp, "out")
	rp := start(t, nil, "recv", "--home", filepath.Join(tmp, "hr"), "--offline", "--json", "--yes", "--once",
		"--dir", out, "--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
	ev := rp.next(t, "listening", 10*time.Second)
	addr := ev["addrs"].([]any)[0].(string) // /ip4/127.0.0.1/udp/PORT/quic-v1/p2p/ID
	parts := strings.Split(addr, "/")
	if len(parts) < 7 {
		t.Fatalf("unexpected address %q", addr)
	}
	// 200 Mbit/s, 40 ms, one bandwidth-delay product of queue, 1 % loss.
	via := startLink(t, "127.0.0.1:"+parts[4], "--rate", "200e6", "--rtt", "40ms", "--queue", "1000000",
		"--loss", "0.01", "--seed", fmt.Sprint(seed))
	host, port, _ := strings.Cut(via, ":")
	target := fmt.Sprintf("/ip4/%s/udp/%s/quic-v1/p2p/%s", host, port, parts[len(parts)-1])
	sp := start(t, nil, "send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", src, target)
	done := sp.next(t, "done", 3*time.Minute)
	if err := sp.wait(t, 30*time.Second); err != nil {
		t.Fatalf("send: %v\n%s", err, sp.stderr)
	}
	if err := rp.wait(t, 30*time.Second); err != nil {
		t.Fatalf("recv: %v\n%s", err, rp.stderr)
	}
	t.Logf("24 MiB over 200 Mbit/s, 40 ms, 1 %% loss: %.2fs, %d connections, round trip %v ms, %.2f %% of packets lost (the sender's count), %d sessions",
		done["seconds"], done.num("conns"), done["rtt_ms"], 100*done["loss"].(float64), done.num("sessions"))
	sameTree(t, src, filepath.Join(out, "src"))
	if done.num("sessions") != 1 {
		t.Errorf("%d sessions: random loss made the transfer restart", done.num("sessions"))
	}
	if done.num("conns") < 2 {
		t.Errorf("the data went over %d connection; a lossy long path should get lanes", done.num("conns"))
	}
	if rtt, _ := done["rtt_ms"].(float64); rtt < 35 {
		t.Errorf("round trip %v ms reported over a 40 ms link", done["rtt_ms"])
	}
}
