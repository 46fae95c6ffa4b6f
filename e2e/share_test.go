package e2e

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sharer is a running dshare share with its ticket.
type sharer struct {
	*proc
	ticket string
	peer   string
	addr   string // its full address, which carries no secret
}

func startSharer(t *testing.T, home, dir string, args ...string) *sharer {
	t.Helper()
	p := start(t, nil, append([]string{"share", "--home", home, "--offline", "--json",
		"--listen", "/ip4/127.0.0.1/udp/0/quic-v1"}, append(args, dir)...)...)
	ev := p.next(t, "sharing", 10*time.Second)
	return &sharer{proc: p, ticket: ev.str("ticket"), peer: ev.str("peer"), addr: ev["addrs"].([]any)[0].(string)}
}

// getArgs are a getter's arguments with its own home.
func getArgs(home, dir, ticket string, extra ...string) []string {
	return append([]string{"get", "--home", home, "--offline", "--json", "--dir", dir, ticket}, extra...)
}

// TestShareManyGetters: 50 getter processes fetch the same 64 MiB file
// from a sharer that serves 8 at a time. All finish byte-identical;
// those beyond capacity are told their place and still finish; the
// active getters share the sharer fairly.
func TestShareManyGetters(t *testing.T) {
	const getters, size = 50, 64 << 20
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "big.bin"), size, 31)
	sh := startSharer(t, filepath.Join(tmp, "hs"), src, "--max-active", "8")
	// The sharer's own events: each get's served event, and, at each
	// status tick (0.5 s) while others wait (so every slot is taken),
	// Jain's index of the rates of the gets active for the whole tick:
	// the share each active getter has of the sharer at one moment.
	served := make(chan event, getters*8)
	var tickJain []float64
	var drained sync.WaitGroup
	drained.Add(1)
	go func() {
		defer drained.Done()
		for e := range sh.events {
			switch e.str("event") {
			case "served":
				served <- e
			case "status":
				var rates []float64
				for _, g := range e["active"].([]any) {
					if g := event(g.(map[string]any)); g["full_tick"] == true {
						rates = append(rates, g["rate"].(float64))
					}
				}
				// A tick in which nothing moved (the machine stalled) has
				// no shares to compare.
				if e.num("queued") > 0 && len(rates) >= 4 && slicesMax(rates) > 0 {
					tickJain = append(tickJain, jainIndex(rates))
				}
			}
			if len(served) == getters {
				return
			}
		}
	}()

	type result struct {
		waited   bool
		position uint64
		start    time.Time
		end      time.Time
		err      error
	}
	results := make([]result, getters)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range getters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(tmp, fmt.Sprintf("out%d", i))
			g := start(t, nil, getArgs(filepath.Join(tmp, fmt.Sprintf("hg%d", i)), out, sh.ticket, "big.bin")...)
			r := &results[i]
			deadline := time.After(5 * time.Minute)
			for {
				select {
				case e, ok := <-g.events:
					if !ok {
						r.err = g.wait(t, time.Minute)
						if r.err == nil && r.end.IsZero() {
							r.err = fmt.Errorf("ended without a done event")
						}
						if r.err != nil {
							r.err = fmt.Errorf("%w\n%s", r.err, g.stderr)
						}
						return
					}
					switch e.str("event") {
					case "waiting":
						r.waited, r.position = true, max(r.position, e.num("position"))
					case "started":
						r.start = time.Now()
					case "done":
						r.end = time.Now()
					}
				case <-deadline:
					r.err = fmt.Errorf("getter %d: not done within 5 minutes\n%s", i, g.stderr)
					return
				}
			}
		}()
	}
	wg.Wait()
	waited, maxPos := 0, uint64(0)
	var ends []float64
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("getter %d: %v", i, r.err)
		}
		sameTree(t, filepath.Join(src, "big.bin"), filepath.Join(tmp, fmt.Sprintf("out%d", i), "big.bin"))
		if r.waited {
			waited++
			maxPos = max(maxPos, r.position)
		}
		ends = append(ends, r.end.Sub(began).Seconds())
		if r.start.IsZero() {
			t.Fatalf("getter %d was never told its get started", i)
		}
	}
	// Each whole get's rate, as the sharer timed it from its start to
	// the getter's final confirmation: these span changing load (the
	// first gets have the sharer to themselves), so they are reported.
	var srates []float64
	all := make(chan struct{})
	go func() { drained.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(time.Minute):
		t.Fatalf("the sharer reported %d of %d gets served", len(served), getters)
	}
	close(served)
	for ev := range served {
		srates = append(srates, float64(ev.num("sent"))/ev["seconds"].(float64))
	}
	if len(srates) != getters {
		t.Fatalf("the sharer reported %d gets served, want %d", len(srates), getters)
	}
	sort.Float64s(ends)
	rss := procStatus(sh.cmd.Process.Pid)["VmHWM"]
	var tickMean float64
	for _, j := range tickJain {
		tickMean += j / float64(len(tickJain))
	}
	t.Logf("%d getters, 8 at a time: %d waited in the queue (deepest place #%d); done after %.1fs (first) / %.1fs (median) / %.1fs (last); sharer peak RSS %d MiB",
		getters, waited, maxPos, ends[0], ends[len(ends)/2], ends[len(ends)-1], rss>>20)
	t.Logf("Jain's index of the active gets' rates at each 0.5 s tick with gets waiting: mean %.3f, lowest %.3f, over %d ticks; of whole gets' rates %.3f (%.1f-%.1f MB/s)",
		tickMean, slicesMin(tickJain), len(tickJain), jainIndex(srates), slicesMin(srates)/1e6, slicesMax(srates)/1e6)
	if waited < getters-8-4 {
		t.Errorf("only %d of %d getters waited in the queue with 8 served at once", waited, getters)
	}
	if maxPos < getters/2 {
		t.Errorf("the deepest place told was #%d with %d getters", maxPos, getters)
	}
	if len(tickJain) < 5 {
		t.Errorf("only %d status ticks with every slot taken and gets waiting", len(tickJain))
	} else if !(tickMean >= 0.9) {
		t.Errorf("Jain's index of the active gets' rates averaged %.3f over %d ticks, want at least 0.9", tickMean, len(tickJain))
	}
	if rss > 300<<20 {
		t.Errorf("sharer peak RSS %d MiB, want at most 300", rss>>20)
	}
}

func jainIndex(x []float64) float64 {
	var sum, sq float64
	for _, v := range x {
		sum += v
		sq += v * v
	}
	return sum * sum / (float64(len(x)) * sq)
}

func slicesMin(x []float64) float64 {
	m := math.Inf(1)
	for _, v := range x {
		m = min(m, v)
	}
	return m
}

func slicesMax(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

// TestSharePriority: with one get served at a time, a high-priority get
// issued while 20 low-priority ones wait is served before all of them.
func TestSharePriority(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "f.bin"), 16<<20, 5)
	// The rate keeps each get long enough that the queue stays full.
	sh := startSharer(t, filepath.Join(tmp, "hs"), src, "--max-active", "1", "--rate", "64M")
	var mu sync.Mutex
	var order []string
	run := func(name string, prio int) *proc {
		g := start(t, nil, getArgs(filepath.Join(tmp, "h"+name), filepath.Join(tmp, "o"+name), sh.ticket, "--priority", fmt.Sprint(prio))...)
		go func() {
			for e := range g.events {
				if e.str("event") == "done" {
					mu.Lock()
					order = append(order, name)
					mu.Unlock()
				}
			}
		}()
		return g
	}
	var low []*proc
	for i := range 21 {
		low = append(low, run(fmt.Sprintf("low%d", i), 0))
	}
	// Wait until the sharer has queued 20 of them, then ask at priority 5.
	for queued := 0; queued < 20; {
		e := sh.next(t, "queued", time.Minute)
		queued = int(e.num("queued"))
	}
	high := run("high", 5)
	if err := high.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("high: %v\n%s", err, high.stderr)
	}
	for i, g := range low {
		if err := g.wait(t, 3*time.Minute); err != nil {
			t.Fatalf("low%d: %v\n%s", i, err, g.stderr)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	pos := -1
	for i, n := range order {
		if n == "high" {
			pos = i
		}
	}
	t.Logf("finishing order: %v", order)
	// At most the get being served when it arrived, and one admitted in
	// the instant before it was queued, finish before it.
	if pos < 0 || pos > 2 {
		t.Fatalf("the high-priority get finished #%d of %d", pos+1, len(order))
	}
}

// TestShareAccess: without the ticket's secret nothing is listed or sent;
// paths that leave the folder, and links, are refused; a peer named with
// --from needs no ticket.
func TestShareAccess(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "f.bin"), 1000, 6)
	secret := filepath.Join(tmp, "secret.txt")
	if err := os.WriteFile(secret, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(src, "link.txt")); err != nil {
		t.Fatal(err)
	}
	// The friend's identity, to be named with --from.
	friendHome := filepath.Join(tmp, "hf")
	sh := startSharer(t, filepath.Join(tmp, "hs"), src, "--from", idOf(t, friendHome))
	addr := sh.ticket
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"ls without the ticket", []string{"ls", "--home", filepath.Join(tmp, "h1"), "--offline", sh.addr}, "needs its ticket"},
		{"get without the ticket", getArgs(filepath.Join(tmp, "h2"), filepath.Join(tmp, "o2"), sh.addr), "needs its ticket"},
		{"parent", getArgs(filepath.Join(tmp, "h3"), filepath.Join(tmp, "o3"), addr, "../secret.txt"), "does not share"},
		{"absolute", getArgs(filepath.Join(tmp, "h4"), filepath.Join(tmp, "o4"), addr, secret), "does not share"},
		{"link", getArgs(filepath.Join(tmp, "h5"), filepath.Join(tmp, "o5"), addr, "link.txt"), "does not share"},
	} {
		out, errOut, err := dshare(t, time.Minute, c.args...)
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != 1 && code != 3 || !strings.Contains(errOut, c.want) || strings.Contains(out, "f.bin") {
			t.Errorf("%s: exit %d, %q; want a refusal saying %q, and nothing listed", c.name, code, errOut, c.want)
		} else {
			t.Logf("%s: exit %d: %s", c.name, code, strings.TrimSpace(errOut))
		}
		for _, d := range []string{"o2", "o3", "o4", "o5"} {
			if ents, _ := os.ReadDir(filepath.Join(tmp, d)); len(ents) > 0 {
				t.Errorf("%s: something arrived in %s", c.name, d)
			}
		}
	}
	// The friend needs no ticket.
	g := start(t, nil, getArgs(friendHome, filepath.Join(tmp, "of"), sh.addr, "f.bin")...)
	if err := g.wait(t, time.Minute); err != nil {
		t.Fatalf("the friend's get: %v\n%s", err, g.stderr)
	}
	sameTree(t, filepath.Join(src, "f.bin"), filepath.Join(tmp, "of", "f.bin"))
}

// TestShareBatchAndResume: a folder of 1,000 files and empty folders in
// one get arrives whole; a getter killed midway fetches only what is
// missing when run again; a sharer killed and restarted is asked again
// by its getter, which then finishes by itself.
func TestShareBatchAndResume(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeSmallTree(t, filepath.Join(src, "tree"), 1000, 9)
	for _, d := range []string{"tree/empty", "tree/d0001/empty2"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeRandom(t, filepath.Join(src, "big.bin"), 256<<20, 8)
	hs := filepath.Join(tmp, "hs")
	sh := startSharer(t, hs, src, "--rate", "64M")

	// Batch: the whole tree in one get.
	g := start(t, nil, getArgs(filepath.Join(tmp, "hb"), filepath.Join(tmp, "ob"), sh.ticket, "tree")...)
	if err := g.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("batch: %v\n%s", err, g.stderr)
	}
	sameTree(t, filepath.Join(src, "tree"), filepath.Join(tmp, "ob", "tree"))

	// A getter killed midway, run again.
	hg, og := filepath.Join(tmp, "hg"), filepath.Join(tmp, "og")
	g = start(t, nil, getArgs(hg, og, sh.ticket, "big.bin")...)
	for {
		e := g.next(t, "progress", time.Minute)
		if e.num("bytes") >= 64<<20 {
			break
		}
	}
	_ = g.cmd.Process.Signal(syscall.SIGKILL)
	_ = g.wait(t, 30*time.Second)
	g = start(t, nil, getArgs(hg, og, sh.ticket, "big.bin")...)
	acc := g.next(t, "accepted", time.Minute)
	if err := g.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("resumed get: %v\n%s", err, g.stderr)
	}
	t.Logf("resumed get: %d MiB were already there", acc.num("already")>>20)
	if acc.num("already") < 32<<20 {
		t.Errorf("the resumed get found only %d bytes held", acc.num("already"))
	}
	sameTree(t, filepath.Join(src, "big.bin"), filepath.Join(og, "big.bin"))
	if ents, _ := os.ReadDir(og); len(ents) != 1 {
		t.Errorf("the resumed get left %d entries in its folder, want big.bin alone", len(ents))
	}

	// The sharer killed midway and started again on the same port.
	hr, or := filepath.Join(tmp, "hr"), filepath.Join(tmp, "or")
	g = start(t, nil, getArgs(hr, or, sh.ticket, "big.bin")...)
	for {
		e := g.next(t, "progress", time.Minute)
		if e.num("bytes") >= 64<<20 {
			break
		}
	}
	port := strings.Split(strings.TrimPrefix(sh.addr, "/ip4/127.0.0.1/udp/"), "/")[0]
	_ = sh.cmd.Process.Signal(syscall.SIGKILL)
	_ = sh.wait(t, 30*time.Second)
	sh2 := start(t, nil, "share", "--home", hs, "--offline", "--json", "--rate", "64M",
		"--listen", "/ip4/127.0.0.1/udp/"+port+"/quic-v1", src)
	sh2.next(t, "sharing", 10*time.Second)
	g.next(t, "retry", time.Minute)
	if err := g.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("get across a sharer restart: %v\n%s", err, g.stderr)
	}
	sameTree(t, filepath.Join(src, "big.bin"), filepath.Join(or, "big.bin"))
}

// TestShareScreen: on a terminal, the sharer shows the get it serves,
// with its rate, and how many wait.
func TestShareScreen(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeRandom(t, filepath.Join(src, "big.bin"), 8<<20, 41)
	pt, slave := openPty(t)
	// 1 MB/s: the first get lasts long enough for several screens.
	cmd := exec.Command(bin("dshare"), "share", "--home", filepath.Join(tmp, "hs"), "--offline",
		"--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--max-active", "1", "--rate", "1M", src)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		pt.master.Close()
		<-pt.done
		if t.Failed() {
			t.Logf("sharer terminal transcript:\n%s", pt.transcript())
		}
	})
	m, off := pt.waitFor(t, regexp.MustCompile(`dshare get (\S+)\r?\n`), 0, 15*time.Second)
	for i := range 2 {
		start(t, nil, getArgs(filepath.Join(tmp, fmt.Sprintf("hg%d", i)), filepath.Join(tmp, fmt.Sprintf("out%d", i)), m[1], "big.bin")...)
	}
	_, off = pt.waitFor(t, "Serving 1, 1 waiting", off, 30*time.Second)
	_, off = pt.waitFor(t, "Serving 1, 1 waiting", off, 10*time.Second) // a full tick
	row := regexp.MustCompile(`\s+…\S{10}\s+big\.bin\s+([0-9.]+) (KiB|MiB)/s\s+([0-9.]+) (KiB|MiB) sent`)
	got, end := pt.waitFor(t, row, off, 10*time.Second)
	pt.waitFor(t, regexp.MustCompile(`waiting: #1 …[1-9A-HJ-NP-Za-km-z]{10}`), end, 10*time.Second)
	rate, _ := strconv.ParseFloat(got[1], 64)
	if got[2] == "MiB" {
		rate *= 1024
	}
	// The rate limit is 1 MB/s: the screen's rate must be near it.
	if rate < 500 || rate > 1500 {
		t.Errorf("the screen shows %s %s/s for a get limited to 1 MB/s", got[1], got[2])
	}
}
