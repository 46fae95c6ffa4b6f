package e2e

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// udpProxy forwards UDP datagrams between clients and one target on
// loopback, and can drop, delay or black-hole them, to play a bad network
// without root.
type udpProxy struct {
	ln     *net.UDPConn
	target *net.UDPAddr

	blackhole atomic.Bool
	dropPct   atomic.Int32 // 0..100
	delayMS   atomic.Int32
	dropped   atomic.Int64

	mu    sync.Mutex
	conns map[string]*net.UDPConn // client address -> upstream socket
	done  chan struct{}
	wg    sync.WaitGroup
}

func newUDPProxy(t testing.TB, target *net.UDPAddr) *udpProxy {
	t.Helper()
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{ln: ln, target: target, conns: map[string]*net.UDPConn{}, done: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *udpProxy) port() int { return p.ln.LocalAddr().(*net.UDPAddr).Port }

// pass decides the fate of one datagram, and delays it if asked.
func (p *udpProxy) pass() bool {
	if p.blackhole.Load() || (p.dropPct.Load() > 0 && rand.Int32N(100) < p.dropPct.Load()) {
		p.dropped.Add(1)
		return false
	}
	if d := p.delayMS.Load(); d > 0 {
		time.Sleep(time.Duration(d) * time.Millisecond)
	}
	return true
}

func (p *udpProxy) serve() {
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, client, err := p.ln.ReadFromUDP(buf)
		if err != nil {
			return
		}
		up := p.upstream(client)
		if up != nil && p.pass() {
			_, _ = up.Write(buf[:n])
		}
	}
}

// upstream returns the socket that carries client's datagrams to the
// target, starting the goroutine that carries the answers back.
func (p *udpProxy) upstream(client *net.UDPAddr) *net.UDPConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[client.String()]; c != nil {
		return c
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	c, err := net.DialUDP("udp4", nil, p.target)
	if err != nil {
		return nil
	}
	p.conns[client.String()] = c
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if p.pass() {
				_, _ = p.ln.WriteToUDP(buf[:n], client)
			}
		}
	}()
	return c
}

func (p *udpProxy) close() {
	close(p.done)
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
