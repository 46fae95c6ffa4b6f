package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lukechampine.com/blake3"
)

var binDir string

// TestMain builds dshare and dshare-bench (which holds the raw-QUIC
// baseline) once for the package.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dshare-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, pkg := range []string{"../cmd/dshare", "../cmd/dshare-bench"} {
		cmd := exec.Command("go", "build", "-o", dir, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func bin(name string) string { return filepath.Join(binDir, name) }

// event is one --json line.
type event map[string]any

func (e event) str(k string) string { s, _ := e[k].(string); return s }
func (e event) num(k string) uint64 { f, _ := e[k].(float64); return uint64(f) }

// proc is a running dshare process with its JSON events.
type proc struct {
	cmd    *exec.Cmd
	events chan event
	stderr *bytes.Buffer
	done   chan struct{}
	err    error
}

// start runs dshare with args (and prefix, e.g. "ip netns exec NS") and
// collects its --json events. The process is killed when the test ends.
func start(t testing.TB, prefix []string, args ...string) *proc {
	t.Helper()
	argv := append(append([]string{}, prefix...), bin("dshare"))
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, events: make(chan event, 4096), stderr: new(bytes.Buffer), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				p.events <- e
			}
		}
		close(p.events)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// next returns the next event named name, skipping others.
func (p *proc) next(t testing.TB, name string, timeout time.Duration) event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				t.Fatalf("process ended before a %q event: %v\n%s", name, p.err, p.stderr)
			}
			if e.str("event") == name {
				return e
			}
		case <-deadline:
			t.Fatalf("no %q event within %v\n%s", name, timeout, p.stderr)
		}
	}
}

// wait waits for the process to exit and returns its error.
func (p *proc) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("process still running after %v\n%s", timeout, p.stderr)
		return nil
	}
}

// procStatus reads the "kB" fields of /proc/PID/status, in bytes; nil if
// the process is gone.
func procStatus(pid int) map[string]int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	fields := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
			fields[k] = kb << 10
		}
	}
	return fields
}

// peakRSS reads a running process's peak resident set size (VmHWM).
func peakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	hwm, ok := procStatus(pid)["VmHWM"]
	if !ok {
		t.Fatal("no VmHWM in /proc/PID/status")
	}
	return hwm
}

// receiver starts "dshare recv" on loopback, offline, and returns it with
// its first address.
func receiver(t testing.TB, home, dir string, extra ...string) (*proc, string) {
	t.Helper()
	args := append([]string{"recv", "--home", home, "--offline", "--json", "--dir", dir,
		"--listen", "/ip4/127.0.0.1/udp/0/quic-v1"}, extra...)
	p := start(t, nil, args...)
	ev := p.next(t, "listening", 10*time.Second)
	addrs, _ := ev["addrs"].([]any)
	if len(addrs) == 0 {
		t.Fatalf("listening event without addresses: %v", ev)
	}
	addr := addrs[0].(string)
	if !strings.HasSuffix(addr, "/p2p/"+ev.str("peer")) {
		t.Fatalf("address %s does not end in /p2p/%s", addr, ev.str("peer"))
	}
	return p, addr
}

// dshare runs a command to completion and returns stdout, stderr and error.
func dshare(t testing.TB, timeout time.Duration, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("dshare"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// lastEvent parses the last JSON line of out.
func lastEvent(t testing.TB, out string) event {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var e event
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	return e
}

// writeRandom writes n pseudo-random bytes to path.
func writeRandom(t testing.TB, path string, n int64, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	if _, err := io.CopyN(f, r, n); err != nil {
		t.Fatal(err)
	}
}

func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := blake3.New(32, nil)
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// sameTree asserts that every file and directory below a exists in b with
// the same content, and that b holds nothing else.
func sameTree(t testing.TB, a, b string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.Walk(a, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		seen[rel] = true
		other, err := os.Stat(filepath.Join(b, rel))
		if err != nil {
			return fmt.Errorf("missing %s: %w", rel, err)
		}
		if fi.IsDir() != other.IsDir() || (!fi.IsDir() && fi.Size() != other.Size()) {
			return fmt.Errorf("%s differs in kind or size", rel)
		}
		if !fi.IsDir() && fileHash(t, p) != fileHash(t, filepath.Join(b, rel)) {
			return fmt.Errorf("%s differs in content", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.Walk(b, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b, p)
		if !seen[rel] {
			return fmt.Errorf("unexpected %s in the target", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// partFiles lists the partial files the receiver keeps in dir's staging
// directory for a resume.
func partFiles(t testing.TB, dir string) []string {
	t.Helper()
	parts, err := filepath.Glob(filepath.Join(dir, ".dshare", "*.part"))
	if err != nil {
		t.Fatal(err)
	}
	return parts
}
