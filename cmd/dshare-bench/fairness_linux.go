package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// fairnessMain measures whether dshare crowds out a TCP flow that shares
// its bottleneck:
//
//	dshare-bench fairness [--rate BITS/S] [--rtt D] [--cc bbr,cubic] [--size N] [--seed N]
//
// Two network namespaces, made for the run and removed after it, are
// joined by the TUN link: a clean link with a queue of one
// bandwidth-delay product. One long TCP flow runs from A to B; once it
// has had the link to itself for a while, dshare sends a file from A to
// B. The table gives the TCP flow's rate alone, then both rates while
// they share the link. Root only.
func fairnessMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dshare-bench fairness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rate := fs.Float64("rate", 200e6, "link rate in bits/s, each direction")
	rtt := fs.Duration("rtt", 40*time.Millisecond, "round-trip time of the link")
	ccs := fs.String("cc", "bbr,cubic", "the TCP flow's congestion controls to try, comma-separated")
	size := int64(256 << 20)
	fs.Var(sizeFlag{&size}, "size", "the file dshare sends")
	alone := fs.Duration("alone", 5*time.Second, "how long the TCP flow has the link to itself first")
	seed := fs.Uint64("seed", 1, "seed of the test data")
	dshare := fs.String("dshare", "", "the dshare binary (default: next to this program, else on PATH)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if os.Geteuid() != 0 {
		return errors.New("fairness needs root: it makes two network namespaces and TUN devices")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin, err := findDshare(*dshare, self)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "dshare-fairness-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d, err := makeFile(dir, "fair.bin", size, *seed, 7)
	if err != nil {
		return err
	}
	cfg := linkConfig{Rate: *rate, Delay: *rtt / 2, Queue: int(*rate / 8 * rtt.Seconds())}
	fmt.Fprintf(stderr, "fairness: %g Mbit/s each way, %v RTT, queue %.2f MB (1 BDP), no loss; %s of dshare against one TCP flow\n",
		*rate/1e6, *rtt, float64(cfg.Queue)/1e6, humanBytes(size))
	var rows []fairResult
	for _, cc := range strings.Split(*ccs, ",") {
		r, err := fairRound(ctx, bin, self, dir, d, cfg, strings.TrimSpace(cc), *alone, *seed)
		if err != nil {
			return fmt.Errorf("with TCP %s: %w", cc, err)
		}
		rows = append(rows, r)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TCP\tTCP alone\tdshare\tTCP meanwhile\tdshare / TCP\tTCP share of link\tdshare share\tdshare conns\tRTT min/smoothed\tdshare loss\t")
	link := *rate / 8 / 1e6
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.1f MB/s\t%.1f MB/s\t%.1f MB/s\t%.2f\t%.2f\t%.2f\t%d\t%.0f/%.0f ms\t%.2f%%\t\n", r.CC, r.TCPAlone, r.Dshare, r.TCPShared,
			r.Dshare/r.TCPShared, r.TCPShared/link, r.Dshare/link, r.Conns, r.MinRTT, r.SRTT, r.Loss*100)
	}
	tw.Flush()
	return json.NewEncoder(stdout).Encode(map[string]any{"link_mbytes_per_s": link, "rtt_ms": rtt.Seconds() * 1000, "results": rows})
}

type fairResult struct {
	CC        string  `json:"tcp_cc"`
	TCPAlone  float64 `json:"tcp_alone_mbytes_per_s"`
	Dshare    float64 `json:"dshare_mbytes_per_s"`
	TCPShared float64 `json:"tcp_shared_mbytes_per_s"`
	Seconds   float64 `json:"dshare_seconds"`
	Conns     int     `json:"dshare_connections"`
	MinRTT    float64 `json:"dshare_min_rtt_ms"`
	SRTT      float64 `json:"dshare_srtt_ms"`
	Loss      float64 `json:"dshare_loss"`
}

// fairRound runs one TCP flow with congestion control cc, and dshare
// beside it, in namespaces of its own.
func fairRound(ctx context.Context, bin, self, dir string, d *dataset, cfg linkConfig, cc string, alone time.Duration, seed uint64) (r fairResult, err error) {
	r.CC = cc
	nsA, nsB := fmt.Sprintf("dshf%da", os.Getpid()%100000), fmt.Sprintf("dshf%db", os.Getpid()%100000)
	for _, ns := range []string{nsA, nsB} {
		if out, err := runIP("netns", "add", ns); err != nil {
			return r, fmt.Errorf("ip netns add %s: %v: %s", ns, err, out)
		}
		defer runIP("netns", "del", ns)
	}
	link, err := newTunLink(nsA, nsB, cfg, seed)
	if err != nil {
		return r, err
	}
	defer link.close()
	inA := func(name string, args ...string) (*child, error) {
		return startChild(ctx, name, "ip", append([]string{"netns", "exec", nsA}, args...)...)
	}
	inB := func(name string, args ...string) (*child, error) {
		return startChild(ctx, name, "ip", append([]string{"netns", "exec", nsB}, args...)...)
	}
	samples := filepath.Join(dir, "tcp-"+cc)
	sink, err := inB("tcp sink", self, "tcp-sink", "--listen", tunNetB+":5001", "--samples", samples)
	if err != nil {
		return r, err
	}
	defer sink.kill()
	if _, err := sink.event("listening", startTimeout); err != nil {
		return r, err
	}
	out := filepath.Join(dir, "out-"+cc)
	recv, err := inB("dshare recv", bin, "recv", "--home", filepath.Join(dir, "home-recv-"+cc), "--offline", "--json", "--yes", "--once",
		"--dir", out, "--listen", "/ip4/"+tunNetB+"/udp/4747/quic-v1")
	if err != nil {
		return r, err
	}
	defer recv.kill()
	to, err := recv.listeningAddr()
	if err != nil {
		return r, err
	}
	source, err := inA("tcp source", self, "tcp-source", "--to", tunNetB+":5001", "--cc", cc)
	if err != nil {
		return r, err
	}
	defer source.kill()
	if _, err := source.event("connected", startTimeout); err != nil {
		return r, err
	}
	began := time.Now()
	select {
	case <-time.After(alone):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	send, err := inA("dshare send", bin, "send", "--home", filepath.Join(dir, "home-send-"+cc), "--offline", "--json",
		"--listen", "/ip4/"+tunNetA+"/udp/0/quic-v1", d.path, to)
	if err != nil {
		return r, err
	}
	defer send.kill()
	if err := send.wait(10 * time.Minute); err != nil {
		return r, err
	}
	done, err := send.event("done", time.Second)
	if err != nil {
		return r, err
	}
	end := send.at("done")
	r.Seconds = done.num("seconds")
	r.Conns, r.MinRTT, r.SRTT, r.Loss = int(done.num("conns")), done.num("rtt_ms"), done.num("srtt_ms"), done.num("loss")
	start := end.Add(-time.Duration(r.Seconds * float64(time.Second)))
	source.kill()
	sink.kill()
	if err := recv.wait(exitTimeout); err != nil {
		return r, err
	}
	if err := d.verify(out); err != nil {
		return r, err
	}
	s, err := readSamples(samples)
	if err != nil {
		return r, err
	}
	// The TCP flow alone: after its first second (slow start).
	r.TCPAlone = s.rate(began.Add(time.Second), start) / 1e6
	r.TCPShared = s.rate(start, end) / 1e6
	r.Dshare = float64(d.bytes) / r.Seconds / 1e6
	return r, nil
}

func runIP(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// samples are a TCP sink's byte counts over time.
type samples []struct {
	at    time.Time
	bytes int64
}

func readSamples(path string) (samples, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var s samples
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ns, n, ok := strings.Cut(sc.Text(), " ")
		t, err1 := strconv.ParseInt(ns, 10, 64)
		b, err2 := strconv.ParseInt(n, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: bad sample %q", path, sc.Text())
		}
		s = append(s, struct {
			at    time.Time
			bytes int64
		}{time.Unix(0, t), b})
	}
	return s, sc.Err()
}

// at is the byte count at t, by linear interpolation.
func (s samples) at(t time.Time) float64 {
	if len(s) == 0 {
		return 0
	}
	if !t.After(s[0].at) {
		return float64(s[0].bytes)
	}
	for i := 1; i < len(s); i++ {
		if !t.After(s[i].at) {
			a, b := s[i-1], s[i]
			f := float64(t.Sub(a.at)) / float64(b.at.Sub(a.at))
			return float64(a.bytes) + f*float64(b.bytes-a.bytes)
		}
	}
	return float64(s[len(s)-1].bytes)
}

// rate is the bytes per second between from and to.
func (s samples) rate(from, to time.Time) float64 {
	if !to.After(from) {
		return 0
	}
	return (s.at(to) - s.at(from)) / to.Sub(from).Seconds()
}

// tcpSinkMain accepts one TCP connection and counts what arrives,
// writing "unixnano bytes" to --samples every 50 ms, until killed.
func tcpSinkMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tcp-sink", flag.ContinueOnError)
	listen := fs.String("listen", "", "`ADDR:PORT` to listen on")
	path := fs.String("samples", "", "`FILE` to write the samples to")
	if err := fs.Parse(args); err != nil || *listen == "" || *path == "" {
		return errUsage
	}
	f, err := os.Create(*path)
	if err != nil {
		return err
	}
	defer f.Close()
	ln, err := net.Listen("tcp4", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, `{"event":"listening"}`)
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	ln.Close()
	var total atomic.Int64
	go func() {
		buf := make([]byte, 256<<10)
		for {
			k, err := c.Read(buf)
			total.Add(int64(k))
			if err != nil {
				return
			}
		}
	}()
	w := bufio.NewWriter(f)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for now := range tick.C {
		fmt.Fprintf(w, "%d %d\n", now.UnixNano(), total.Load())
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// tcpSourceMain sends to --to as fast as TCP lets it, until killed.
func tcpSourceMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tcp-source", flag.ContinueOnError)
	to := fs.String("to", "", "`ADDR:PORT` to send to")
	cc := fs.String("cc", "", "the socket's congestion control (default: the system's)")
	if err := fs.Parse(args); err != nil || *to == "" {
		return errUsage
	}
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		if *cc == "" {
			return nil
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, *cc)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("congestion control %s: %w", *cc, serr)
		}
		return nil
	}}
	c, err := d.Dial("tcp4", *to)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, `{"event":"connected"}`)
	buf := make([]byte, 256<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
}
