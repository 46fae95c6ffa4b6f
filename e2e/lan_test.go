package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLANDiscovery runs receivers and a sender in network namespaces on one
// bridge, without --offline, so that they find each other by mDNS.
func TestLANDiscovery(t *testing.T) {
	l := newLab(t)
	br := l.bridge("br")
	a, b, c := l.ns("a"), l.ns("b"), l.ns("c")
	l.plug(a, br, "eth0", "10.199.0.1/24")
	l.plug(b, br, "eth0", "10.199.0.2/24")
	l.plug(c, br, "eth0", "10.199.0.3/24")

	src, tmp := t.TempDir(), t.TempDir()
	writeRandom(t, filepath.Join(src, "report.pdf"), 3<<20, 9)
	makeTree(t, filepath.Join(src, "photos"), 20)
	sendCmd := func(args ...string) (string, string, error) {
		full := append(inNS(b), bin("dshare"), "send", "--home", filepath.Join(tmp, "hb"), "--json", "--lan-only", "--wait", "20s")
		cmd := exec.Command(full[0], append(full[1:], args...)...)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	recvIn := func(ns, home, dir string) (*proc, string) {
		p := start(t, inNS(ns), "recv", "--home", home, "--json", "--lan-only", "--yes", "--once", "--dir", dir)
		return p, p.next(t, "listening", 10*time.Second).str("peer")
	}

	t.Run("no peer given", func(t *testing.T) {
		out := filepath.Join(tmp, "out1")
		recv, _ := recvIn(a, filepath.Join(tmp, "ha"), out)
		stdout, stderr, err := sendCmd(filepath.Join(src, "report.pdf"), filepath.Join(src, "photos"))
		if err != nil {
			t.Fatalf("send: %v\n%s", err, stderr)
		}
		if ev := lastEvent(t, stdout); ev.str("event") != "done" {
			t.Fatalf("last event %v", ev)
		}
		if err := recv.wait(t, 30*time.Second); err != nil {
			t.Fatalf("recv: %v\n%s", err, recv.stderr)
		}
		sameTree(t, src, out)
	})

	t.Run("peer ID looked up on the LAN", func(t *testing.T) {
		out := filepath.Join(tmp, "out2")
		recv, id := recvIn(a, filepath.Join(tmp, "ha"), out)
		_, stderr, err := sendCmd(filepath.Join(src, "report.pdf"), id)
		if err != nil {
			t.Fatalf("send: %v\n%s", err, stderr)
		}
		if err := recv.wait(t, 30*time.Second); err != nil {
			t.Fatalf("recv: %v", err)
		}
		if fileHash(t, filepath.Join(src, "report.pdf")) != fileHash(t, filepath.Join(out, "report.pdf")) {
			t.Fatal("file differs")
		}
	})

	t.Run("several receivers and no terminal", func(t *testing.T) {
		_, id1 := recvIn(a, filepath.Join(tmp, "ha"), filepath.Join(tmp, "out3"))
		_, id2 := recvIn(c, filepath.Join(tmp, "hc"), filepath.Join(tmp, "out4"))
		_, stderr, err := sendCmd(filepath.Join(src, "report.pdf"))
		if err == nil {
			t.Fatal("send picked a receiver by itself")
		}
		if !strings.Contains(stderr, id1) || !strings.Contains(stderr, id2) {
			t.Fatalf("the error does not list both receivers:\n%s", stderr)
		}
	})
}
