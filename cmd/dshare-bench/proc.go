package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// event is one JSON line of a child's stdout.
type event map[string]any

func (e event) str(k string) string  { s, _ := e[k].(string); return s }
func (e event) num(k string) float64 { f, _ := e[k].(float64); return f }

// child is a running process of dshare or of the raw baseline. Its stdout
// is read as it comes, so a chatty child never blocks on a full pipe; the
// reader keeps the first line and the last JSON event of each name.
type child struct {
	name string
	cmd  *exec.Cmd

	mu     sync.Mutex
	first  string
	events map[string]event
	seen   map[string]time.Time // when each event name first came
	stderr tail
	notify chan struct{} // a line arrived

	start time.Time
	done  chan struct{} // closed once exited and waited for
	err   error
	wall  time.Duration
}

// startChild runs path with args. The child is killed when ctx ends.
func startChild(ctx context.Context, name, path string, args ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 5 * time.Second
	c := &child{name: name, cmd: cmd, events: map[string]event{}, seen: map[string]time.Time{}, notify: make(chan struct{}, 1), done: make(chan struct{})}
	cmd.Stderr = &c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	go func() {
		c.read(out)
		err := cmd.Wait()
		c.mu.Lock()
		c.err, c.wall = err, time.Since(c.start)
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

func (c *child) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	firstLine := true
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		ok := json.Unmarshal(line, &e) == nil && e.str("event") != ""
		c.mu.Lock()
		if firstLine {
			c.first, firstLine = strings.TrimSpace(string(line)), false
		}
		if ok {
			c.events[e.str("event")] = e
			if _, was := c.seen[e.str("event")]; !was {
				c.seen[e.str("event")] = time.Now()
			}
		}
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
	_, _ = io.Copy(io.Discard, r) // a line too long: keep the pipe drained
}

// at is when the child's first event named name came; zero if none.
func (c *child) at(name string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[name]
}

// firstLine waits for the child's first line of output.
func (c *child) firstLine(timeout time.Duration) (string, error) {
	return c.await(timeout, "its first line", func() (string, bool) { return c.first, c.first != "" })
}

// event waits for the child's JSON event named name.
func (c *child) event(name string, timeout time.Duration) (event, error) {
	var e event
	_, err := c.await(timeout, fmt.Sprintf("a %q event", name), func() (string, bool) {
		e = c.events[name]
		return "", e != nil
	})
	return e, err
}

// await polls have under the lock each time a line arrives, until it
// says yes, the child exits, or timeout passes.
func (c *child) await(timeout time.Duration, what string, have func() (string, bool)) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		s, ok := have()
		c.mu.Unlock()
		if ok {
			return s, nil
		}
		select {
		case <-c.notify:
		case <-c.done:
			c.mu.Lock()
			s, ok := have() // the line may have come with the exit
			c.mu.Unlock()
			if ok {
				return s, nil
			}
			return "", fmt.Errorf("%s exited (%v) before %s: %s", c.name, c.err, what, c.stderr.String())
		case <-deadline.C:
			return "", fmt.Errorf("%s printed no %s within %v: %s", c.name, what, timeout, c.stderr.String())
		}
	}
}

// wait waits for the child to exit, killing it after timeout.
func (c *child) wait(timeout time.Duration) error {
	select {
	case <-c.done:
	case <-time.After(timeout):
		c.kill()
		return fmt.Errorf("%s still ran after %v and was killed: %s", c.name, timeout, c.stderr.String())
	}
	if c.err != nil {
		return fmt.Errorf("%s failed (%v): %s", c.name, c.err, c.stderr.String())
	}
	return nil
}

// kill ends the child, if still running, and waits for it.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second): // WaitDelay gives up on the pipes before this
	}
}

// peakRSS is the child's peak resident set size in bytes, once exited; 0
// where the system does not say.
func (c *child) peakRSS() int64 {
	select {
	case <-c.done:
	default:
		return 0
	}
	if c.cmd.ProcessState == nil {
		return 0
	}
	return maxRSS(c.cmd.ProcessState)
}

// tail keeps the last few KiB written to it: enough to say why a child
// failed, never the whole of a long run's log.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if s == "" {
		return "no output on stderr"
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

// listeningAddr waits for dshare recv's listening event and returns its
// first address.
func (c *child) listeningAddr() (string, error) {
	ev, err := c.event("listening", startTimeout)
	if err != nil {
		return "", err
	}
	addrs, _ := ev["addrs"].([]any)
	if len(addrs) == 0 {
		return "", errors.New("dshare recv's listening event has no address")
	}
	first, _ := addrs[0].(string)
	return first, nil
}
