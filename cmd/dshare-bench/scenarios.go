package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// loopQUIC is where every process listens: loopback only, QUIC only.
const loopQUIC = "/ip4/127.0.0.1/udp/0/quic-v1"

// Deadlines for the waits around a transfer; the transfer itself has
// --timeout.
const (
	startTimeout = 30 * time.Second // until a listener prints its address
	exitTimeout  = 30 * time.Second // until a receiver exits after the sender
)

// scenario is one table of the report.
type scenario struct {
	Name  string      `json:"name"`
	About string      `json:"about"`
	Link  *linkConfig `json:"link,omitempty"` // nil: straight over loopback
	Files int         `json:"files"`          // 1: one file, else a tree
	Size  int64       `json:"file_bytes"`     // of each file
}

// linkMBps is the emulated link's rate in MB/s (10^6 bytes), 0 without one.
func (s scenario) linkMBps() float64 {
	if s.Link == nil {
		return 0
	}
	return s.Link.Rate / 8 / 1e6
}

// scenarios lists every scenario with the sizes of cfg.
func scenarios(cfg config) []scenario {
	wan := func(loss float64) *linkConfig {
		return &linkConfig{
			Rate:  cfg.wanRate,
			Delay: cfg.wanRTT / 2,
			Queue: int(cfg.wanRate / 8 * cfg.wanRTT.Seconds()), // one bandwidth-delay product
			Loss:  loss,
		}
	}
	wanAbout := func(loss float64) string {
		l := wan(loss)
		return fmt.Sprintf("1 file of %s through the emulator: %g Mbit/s each way, %v RTT, queue %.2f MB (1 BDP), loss %g%% each way",
			humanBytes(cfg.sizeWAN), l.Rate/1e6, cfg.wanRTT, float64(l.Queue)/1e6, loss*100)
	}
	return []scenario{
		{Name: "loopback", About: fmt.Sprintf("1 file of %s over loopback", humanBytes(cfg.size)), Files: 1, Size: cfg.size},
		{Name: "wan-clean", About: wanAbout(0), Link: wan(0), Files: 1, Size: cfg.sizeWAN},
		{Name: "wan-loss-0.5", About: wanAbout(0.005), Link: wan(0.005), Files: 1, Size: cfg.sizeWAN},
		{Name: "wan-loss-1", About: wanAbout(0.01), Link: wan(0.01), Files: 1, Size: cfg.sizeWAN},
		{Name: "files-4k", About: fmt.Sprintf("%d files of 4 KiB, %d to a directory, over loopback", cfg.files4k, filesPerDir), Files: cfg.files4k, Size: 4 << 10},
		{Name: "files-64k", About: fmt.Sprintf("%d files of 64 KiB, %d to a directory, over loopback", cfg.files64k, filesPerDir), Files: cfg.files64k, Size: 64 << 10},
	}
}

// result is one transfer by one tool.
type result struct {
	Tool         string     `json:"tool"`
	Round        int        `json:"round"`
	Bytes        int64      `json:"bytes"`
	Files        int        `json:"files"`
	Seconds      float64    `json:"seconds"`       // the sender's own transfer time
	FirstByte    float64    `json:"first_byte"`    // the sender's, since it started
	TotalSeconds float64    `json:"total_seconds"` // the sender's, since it started
	Wall         float64    `json:"wall_seconds"`  // the sender process, timed by the bench
	MBps         float64    `json:"mb_per_s"`
	FilesPerSec  float64    `json:"files_per_s"`
	RSSSend      int64      `json:"peak_rss_send"`
	RSSRecv      int64      `json:"peak_rss_recv"`
	Up           *linkStats `json:"link_up,omitempty"`
	Down         *linkStats `json:"link_down,omitempty"`
}

const (
	toolDshare = "dshare"
	toolRaw    = "raw-quic"
)

// bench holds what the scenarios share.
type bench struct {
	ctx  context.Context
	cfg  config
	self string // this binary, for the raw baseline
	tmp  string
	log  io.Writer
	data map[string]*dataset
	runs int
}

// dataset returns the data of sc, generating it on first use.
func (b *bench) dataset(sc scenario) (*dataset, error) {
	key := fmt.Sprintf("%dx%d", sc.Files, sc.Size)
	if d := b.data[key]; d != nil {
		return d, nil
	}
	dir := filepath.Join(b.tmp, "src-"+key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t0 := time.Now()
	var d *dataset
	var err error
	stream := uint64(sc.Files)<<32 ^ uint64(sc.Size) // the same shape gives the same bytes
	if sc.Files == 1 {
		d, err = makeFile(dir, "data.bin", sc.Size, b.cfg.seed, stream)
	} else {
		d, err = makeTree(dir, "tree", sc.Files, sc.Size, b.cfg.seed, stream)
	}
	if err != nil {
		return nil, err
	}
	settle()
	fmt.Fprintf(b.log, "generated %s in %d file(s) in %.1fs\n", humanBytes(d.bytes), d.files, time.Since(t0).Seconds())
	b.data[key] = d
	return d, nil
}

// runDir is a fresh directory for one transfer, with fresh dshare homes,
// so that no journal of an earlier round answers "already there".
func (b *bench) runDir() (string, error) {
	b.runs++
	dir := filepath.Join(b.tmp, "run-"+strconv.Itoa(b.runs))
	return dir, os.MkdirAll(filepath.Join(dir, "out"), 0o755)
}

// through returns the address to dial for addr: addr itself, or the
// address of a new emulator in front of it.
func (b *bench) through(sc scenario, addr string) (string, *netem, error) {
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return "", nil, fmt.Errorf("the listener printed %q, not a multiaddr", addr)
	}
	ip, err1 := a.ValueForProtocol(ma.P_IP4)
	port, err2 := a.ValueForProtocol(ma.P_UDP)
	id, err3 := a.ValueForProtocol(ma.P_P2P)
	if err := errors.Join(err1, err2, err3); err != nil || ip != "127.0.0.1" {
		return "", nil, fmt.Errorf("the listener's address %s is not a QUIC address on 127.0.0.1 with a peer ID", addr)
	}
	if sc.Link == nil {
		return addr, nil, nil
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", nil, err
	}
	em, err := newNetem(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}, *sc.Link, b.cfg.seed)
	if err != nil {
		return "", nil, fmt.Errorf("cannot start the link emulator: %w", err)
	}
	return fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1/p2p/%s", em.addr().Port, id), em, nil
}

// linkResult copies the emulator's counters into r.
func linkResult(r *result, em *netem) {
	if em == nil {
		return
	}
	up, down := em.stats()
	r.Up, r.Down = &up, &down
}

// runDshare sends d with dshare send to a dshare recv, and checks what
// arrived.
func (b *bench) runDshare(sc scenario, d *dataset) (r result, err error) {
	dir, err := b.runDir()
	if err != nil {
		return r, err
	}
	defer func() {
		os.RemoveAll(dir)
		settle()
	}()
	out := filepath.Join(dir, "out")
	recv, err := startChild(b.ctx, "dshare recv", b.cfg.dshare, "recv", "--home", filepath.Join(dir, "home-recv"),
		"--offline", "--json", "--yes", "--once", "--dir", out, "--listen", loopQUIC)
	if err != nil {
		return r, err
	}
	defer recv.kill()
	first, err := recv.listeningAddr()
	if err != nil {
		return r, err
	}
	addr, em, err := b.through(sc, first)
	if err != nil {
		return r, err
	}
	if em != nil {
		defer em.close()
	}
	args := append([]string{"send", "--home", filepath.Join(dir, "home-send"), "--offline", "--json", "--listen", loopQUIC},
		b.cfg.sendArgs...)
	send, err := startChild(b.ctx, "dshare send", b.cfg.dshare, append(args, d.path, addr)...)
	if err != nil {
		return r, err
	}
	defer send.kill()
	if err := send.wait(b.cfg.timeout); err != nil {
		return r, err
	}
	done, err := send.event("done", time.Second)
	if err != nil {
		return r, err
	}
	if err := recv.wait(exitTimeout); err != nil {
		return r, err
	}
	linkResult(&r, em)
	if err := d.verify(out); err != nil {
		return r, err
	}
	r.Tool, r.Bytes, r.Files = toolDshare, d.bytes, int(done.num("files"))
	r.Seconds, r.FirstByte, r.TotalSeconds = done.num("seconds"), done.num("first_byte"), done.num("total_seconds")
	if sent := int64(done.num("bytes")); sent != d.bytes || r.Files != d.files {
		return r, fmt.Errorf("dshare reported %d files and %d bytes sent, not %d and %d", r.Files, sent, d.files, d.bytes)
	}
	if r.Seconds <= 0 {
		return r, errors.New("dshare's done event has no transfer time")
	}
	r.Wall = send.wall.Seconds()
	r.MBps = float64(d.bytes) / r.Seconds / 1e6
	r.FilesPerSec = float64(r.Files) / r.Seconds
	r.RSSSend, r.RSSRecv = send.peakRSS(), recv.peakRSS()
	return r, nil
}

// runRaw sends as many bytes as d holds over one raw QUIC stream.
func (b *bench) runRaw(sc scenario, d *dataset) (r result, err error) {
	l, err := startChild(b.ctx, "raw-listen", b.self, "raw-listen")
	if err != nil {
		return r, err
	}
	defer l.kill()
	first, err := l.firstLine(startTimeout)
	if err != nil {
		return r, err
	}
	addr, em, err := b.through(sc, first)
	if err != nil {
		return r, err
	}
	if em != nil {
		defer em.close()
	}
	s, err := startChild(b.ctx, "raw-send", b.self, "raw-send", addr, strconv.FormatInt(d.bytes, 10))
	if err != nil {
		return r, err
	}
	defer s.kill()
	if err := s.wait(b.cfg.timeout); err != nil {
		return r, err
	}
	if err := l.wait(exitTimeout); err != nil {
		return r, err
	}
	line, err := s.firstLine(time.Second)
	if err != nil {
		return r, err
	}
	var rep rawReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil || rep.Seconds <= 0 {
		return r, fmt.Errorf("raw-send printed %q, not its timings", line)
	}
	linkResult(&r, em)
	r.Tool, r.Bytes = toolRaw, d.bytes
	r.Seconds, r.FirstByte, r.TotalSeconds = rep.Seconds, rep.FirstByte, rep.TotalSeconds
	r.Wall = s.wall.Seconds()
	r.MBps = float64(d.bytes) / r.Seconds / 1e6
	r.RSSSend, r.RSSRecv = s.peakRSS(), l.peakRSS()
	return r, nil
}

// runScenario alternates the tools round by round, starting with the
// other one each round, so that drifting machine noise hits both.
func (b *bench) runScenario(sc scenario) ([]result, error) {
	d, err := b.dataset(sc)
	if err != nil {
		return nil, err
	}
	var results []result
	for round := 1; round <= b.cfg.rounds; round++ {
		tools := []string{toolRaw, toolDshare}
		if round%2 == 0 {
			tools[0], tools[1] = tools[1], tools[0]
		}
		for _, tool := range tools {
			if err := b.ctx.Err(); err != nil {
				return nil, errors.New("interrupted")
			}
			run := b.runRaw
			if tool == toolDshare {
				run = b.runDshare
			}
			r, err := run(sc, d)
			if err != nil {
				if b.ctx.Err() != nil {
					return nil, errors.New("interrupted")
				}
				return nil, fmt.Errorf("%s, round %d, %s: %w", sc.Name, round, tool, err)
			}
			r.Round = round
			fmt.Fprintf(b.log, "%s round %d: %-8s %8.2f MB/s in %.2fs\n", sc.Name, round, tool, r.MBps, r.Seconds)
			results = append(results, r)
		}
	}
	return results, nil
}
