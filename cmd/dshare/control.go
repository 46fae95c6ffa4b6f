package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dshare/dshare/peer/mailbox"
)

// The agent's control socket: one JSON request per connection, one JSON
// answer. It lives in the home, which only its user can enter, and the
// agent also checks the caller's user ID on the socket itself.

const controlSocket = "agent.sock"

type controlRequest struct {
	Op   string        `json:"op"` // queue, list, cancel, retry
	Item *mailbox.Item `json:"item,omitempty"`
	ID   uint64        `json:"id,omitempty"`
	// Snapshot asks the agent to copy the paths at once (queue).
	Snapshot bool `json:"snapshot,omitempty"`
}

type controlAnswer struct {
	Error string         `json:"error,omitempty"`
	ID    uint64         `json:"id,omitempty"`
	Items []mailbox.Item `json:"items,omitempty"`
}

// errNoAgent means no agent answers on the control socket.
var errNoAgent = errors.New("no dshare agent is running")

// callAgent sends req to the agent of home and returns its answer.
func callAgent(home string, req *controlRequest) (*controlAnswer, error) {
	path := filepath.Join(home, controlSocket)
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, sentence{fmt.Sprintf("%v for %s; start one with: dshare agent --home %s (docs/dshare-agent.service runs it as a systemd user service)", errNoAgent, home, home), errNoAgent}
		}
		return nil, fmt.Errorf("cannot reach the agent at %s: %w", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute)) // a snapshot of a big folder takes a while
	werr := json.NewEncoder(c).Encode(req)
	// A refusal may have come before the request was written: read it.
	var a controlAnswer
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&a); err != nil {
		if werr != nil {
			return nil, werr
		}
		return nil, fmt.Errorf("the agent did not answer: %w", err)
	}
	if a.Error != "" {
		return nil, errors.New(a.Error)
	}
	return &a, nil
}

// serveControl answers control requests with handle until l is closed.
// Connections from another user are refused before anything is read.
func serveControl(l *net.UnixListener, handle func(*controlRequest) *controlAnswer) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
			if uid, err := peerUID(c); err != nil || uid != os.Getuid() {
				_ = json.NewEncoder(c).Encode(&controlAnswer{Error: "this agent serves only its own user"})
				return
			}
			var req controlRequest
			dec := json.NewDecoder(bufio.NewReader(c))
			if err := dec.Decode(&req); err != nil {
				_ = json.NewEncoder(c).Encode(&controlAnswer{Error: "a malformed request: " + err.Error()})
				return
			}
			_ = json.NewEncoder(c).Encode(handle(&req))
		}()
	}
}

// listenControl opens the control socket in home, replacing a stale one
// left by a killed agent (the home lock says no other agent runs).
func listenControl(home string) (*net.UnixListener, error) {
	path := filepath.Join(home, controlSocket)
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it", path)
		}
		_ = os.Remove(path)
	}
	var l *net.UnixListener
	var err error
	withUmask(0o177, func() { l, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"}) })
	if err != nil {
		return nil, err
	}
	return l, os.Chmod(path, 0o600)
}
