package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestTunLink: TCP between two namespaces goes through the TUN link, and
// the link holds it to its delay and rate.
func TestTunLink(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("DSHARE_PRIVILEGED_TESTS") == "1" {
			t.Fatal("needs root for namespaces and TUN devices, and DSHARE_PRIVILEGED_TESTS=1 makes this test mandatory")
		}
		t.Skip("skipped: needs root for namespaces and TUN devices; run as root with DSHARE_PRIVILEGED_TESTS=1 to require it")
	}
	a, b := fmt.Sprintf("dsht%da", os.Getpid()%100000), fmt.Sprintf("dsht%db", os.Getpid()%100000)
	for _, ns := range []string{a, b} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	const rate, delay, n = 50e6, 10 * time.Millisecond, 2 << 20
	l, err := newTunLink(a, b, linkConfig{Rate: rate, Delay: delay, Queue: 1 << 20}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	var ln net.Listener
	if err := inNetns(b, func() (err error) { ln, err = net.Listen("tcp4", tunNetB+":5002"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		var one [1]byte
		if _, err := io.ReadFull(c, one[:]); err != nil {
			got <- -1
			return
		}
		if _, err := c.Write(one[:]); err != nil {
			got <- -1
			return
		}
		k, _ := io.Copy(io.Discard, c)
		got <- k
	}()
	var c net.Conn
	if err := inNetns(a, func() (err error) {
		c, err = net.DialTimeout("tcp4", tunNetB+":5002", 10*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	began := time.Now()
	var one [1]byte
	if _, err := c.Write(one[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, one[:]); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(began); rtt < 2*delay {
		t.Errorf("a round trip took %v through a link of %v each way", rtt, delay)
	}
	began = time.Now()
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case k := <-got:
		if k != n {
			t.Fatalf("the far side got %d bytes, want %d", k, n)
		}
	case <-time.After(time.Minute):
		t.Fatal("the far side got nothing within a minute")
	}
	took := time.Since(began)
	if least := time.Duration(float64(n*8) / rate * float64(time.Second)); took < least {
		t.Errorf("%d bytes took %v through %g bit/s, at least %v", n, took, rate, least)
	}
	up, down := l.stats()
	t.Logf("%d bytes in %v; up: %v; down: %v", n, took, up, down)
	if up.Bytes < n {
		t.Errorf("the link carried %d bytes up, fewer than the %d sent", up.Bytes, n)
	}
}
