package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The TUN link: the emulator's pipes (netem.go) between two network
// namespaces, for every IP packet, TCP included. Each namespace gets a
// TUN device; what one side's kernel routes into its device, the bench
// reads, passes through a pipe (rate, queue, delay, loss) and writes into
// the other side's device, whose kernel delivers it. It needs root, and
// touches nothing outside the two namespaces it is given.

const (
	tunDev  = "dsh0"
	tunMTU  = 1500
	tunNetA = "10.99.0.1"
	tunNetB = "10.99.0.2"
)

// inNetns runs fn on a thread inside the network namespace ns (a name
// under /var/run/netns): sockets it opens live there, and work from any
// thread afterwards. A thread whose namespace cannot be put back is never
// returned to the runtime.
func inNetns(ns string, fn func() error) error {
	runtime.LockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("own network namespace: %w", err)
	}
	defer unix.Close(self)
	target, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace %s: %w", ns, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("leave network namespace %s: %w", ns, err) // the thread stays locked, and dies with its goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}

// openTun opens the TUN device tunDev inside ns, gives it addr/24 and
// brings it and ns's loopback up.
func openTun(ns, addr string) (*os.File, error) {
	var f *os.File
	err := inNetns(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(tunDev)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("create %s: %w", tunDev, err)
		}
		f = os.NewFile(uintptr(fd), tunDev) // non-blocking: reads wait in the poller
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"-n", ns, "addr", "add", addr + "/24", "dev", tunDev},
		{"-n", ns, "link", "set", tunDev, "mtu", fmt.Sprint(tunMTU), "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			f.Close()
			return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return f, nil
}

// tunLink joins two namespaces through the emulator: nsA is tunNetA, nsB
// is tunNetB, and cfg applies to each direction.
type tunLink struct {
	a, b     *os.File
	up, down *pipe
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

func newTunLink(nsA, nsB string, cfg linkConfig, seed uint64) (*tunLink, error) {
	if cfg.Loss < 0 || cfg.Loss >= 1 || cfg.Rate < 0 || cfg.Queue < 0 || cfg.Delay < 0 {
		return nil, errors.New("the emulated link needs a loss in [0, 1) and no negative rate, queue or delay")
	}
	a, err := openTun(nsA, tunNetA)
	if err != nil {
		return nil, err
	}
	b, err := openTun(nsB, tunNetB)
	if err != nil {
		a.Close()
		return nil, err
	}
	l := &tunLink{a: a, b: b, done: make(chan struct{})}
	l.up = newPipe(cfg, seed, 1, func(_ *flow, p []byte) { _, _ = b.Write(p) }, l.done)
	l.down = newPipe(cfg, seed, 2, func(_ *flow, p []byte) { _, _ = a.Write(p) }, l.done)
	l.wg.Add(4)
	go func() { defer l.wg.Done(); l.up.run() }()
	go func() { defer l.wg.Done(); l.down.run() }()
	go func() { defer l.wg.Done(); l.forward(a, l.up) }()
	go func() { defer l.wg.Done(); l.forward(b, l.down) }()
	return l, nil
}

// forward hands every packet read from dev to p.
func (l *tunLink) forward(dev *os.File, p *pipe) {
	buf := make([]byte, tunMTU+64)
	for {
		n, err := dev.Read(buf)
		if err != nil {
			return
		}
		p.enqueue(nil, append([]byte(nil), buf[:n]...))
	}
}

func (l *tunLink) stats() (up, down linkStats) { return l.up.snapshot(), l.down.snapshot() }

// close stops the link; the devices go with their namespaces.
func (l *tunLink) close() {
	l.once.Do(func() {
		close(l.done)
		l.a.Close()
		l.b.Close()
		l.wg.Wait()
	})
}
