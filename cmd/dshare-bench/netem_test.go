package main

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// TestNetem pushes a burst through a slow, lossy link with a small queue
// and checks the emulator's bookkeeping: every packet is forwarded, lost
// or dropped by the queue; survivors arrive in order, after the delay;
// answers come back through the same flow. Timing is only checked as a
// lower bound, which a loaded machine cannot break.
func TestNetem(t *testing.T) {
	target, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	const delay = 20 * time.Millisecond
	cfg := linkConfig{Rate: 8e6, Delay: delay, Queue: 20_000, Loss: 0.3}
	em, err := newNetem(target.LocalAddr().(*net.UDPAddr), cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer em.close()

	// The target is read all along: a socket nobody reads drops
	// packets in the kernel, which would look like the emulator's.
	type arrival struct {
		seq  uint32
		from *net.UDPAddr
		at   time.Time
	}
	arrivals := make(chan arrival, 1000)
	go func() {
		defer close(arrivals)
		buf := make([]byte, 2000)
		for {
			k, addr, err := target.ReadFromUDP(buf)
			if err != nil || k < 4 {
				return
			}
			arrivals <- arrival{binary.BigEndian.Uint32(buf[:k]), addr, time.Now()}
		}
	}()

	client, err := net.DialUDP("udp4", nil, em.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const n = 200
	took := make(chan struct{}, n)
	em.up.mu.Lock()
	em.up.took = func() { took <- struct{}{} }
	em.up.mu.Unlock()
	pkt := make([]byte, 1000)
	start := time.Now()
	for i := range n {
		binary.BigEndian.PutUint32(pkt, uint32(i))
		if _, err := client.Write(pkt); err != nil {
			t.Fatal(err)
		}
		// Wait until the emulator has taken it, so that no packet is
		// lost in the kernel before it, whatever the machine's load.
		select {
		case <-took:
		case <-time.After(5 * time.Second):
			t.Fatalf("the emulator did not take packet %d", i)
		}
	}

	// Far more than the link carries while the burst lasts, into a queue
	// of 20 packets: many are dropped by the queue.
	var got []uint32
	var from *net.UDPAddr
	for timeout := time.After(10 * time.Second); ; {
		up, _ := em.stats()
		if up.Forwarded+up.Lost+up.QueueDrops == n && int(up.Forwarded) == len(got) {
			break
		}
		select {
		case a := <-arrivals:
			if len(got) == 0 && a.at.Sub(start) < delay {
				t.Errorf("the first packet arrived after %v, before the one-way delay of %v", a.at.Sub(start), delay)
			}
			got, from = append(got, a.seq), a.from
		case <-time.After(100 * time.Millisecond): // the counters may lag the last arrival
		case <-timeout:
			t.Fatalf("after 10 s, the emulator counted %+v and the target got %d packets", up, len(got))
		}
	}
	up, _ := em.stats()
	if up.Forwarded+up.Lost+up.QueueDrops != n {
		t.Fatalf("of %d packets, %d were forwarded, %d lost and %d dropped by the queue", n, up.Forwarded, up.Lost, up.QueueDrops)
	}
	if int(up.Forwarded) != len(got) {
		t.Fatalf("the emulator forwarded %d packets, the target got %d", up.Forwarded, len(got))
	}
	if up.QueueDrops == 0 || up.Lost == 0 || up.Forwarded == 0 {
		t.Fatalf("a burst ten times the queue on a lossy link: %+v", up)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("packet %d arrived after packet %d", got[i], got[i-1])
		}
	}

	// An answer from the target goes back to the client that sent.
	if _, err := target.WriteToUDP([]byte("answer"), from); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2000)
	for {
		k, err := client.Read(buf)
		if err != nil {
			// The answer can be lost too (30 %), so say only what happened.
			_, down := em.stats()
			if down.Lost != 1 {
				t.Fatalf("no answer came back: %v, down %+v", err, down)
			}
			break
		}
		if string(buf[:k]) == "answer" {
			break
		}
	}
}

// TestNetemLoopbackOnly: the emulator forwards to loopback only.
func TestNetemLoopbackOnly(t *testing.T) {
	if _, err := newNetem(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}, linkConfig{}, 1); err == nil {
		t.Fatal("the emulator accepted a target that is not on loopback")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1073741824": 1 << 30, "512M": 512 << 20, "1GiB": 1 << 30, "500MB": 500e6, "4KiB": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1T", "M", "1.5G"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted it", in)
		}
	}
}
