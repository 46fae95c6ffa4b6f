package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dshare/dshare/wire"
)

// half is one direction of an in-memory stream, with flow control, half
// close, resets and deadlines, like a QUIC stream.
type half struct {
	mu      sync.Mutex
	buf     []byte
	closed  bool      // the writer is done: EOF once buf is drained
	reset   bool      // either side reset the stream
	code    wire.Code // the reset's code
	resetBy *memStream
	window  int           // bytes the writer may have unread at once
	changed chan struct{} // closed and replaced on every change
}

const pipeWindow = 256 << 10

func newHalf(window int) *half { return &half{window: window, changed: make(chan struct{})} }

// signal wakes waiters. Call with h.mu held.
func (h *half) signal() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *half) resetErr(s *memStream) error {
	if h.resetBy == s {
		return fmt.Errorf("%w: stream reset here", h.code.Err())
	}
	return &wire.RemoteError{Code: h.code}
}

// wait blocks until ch is closed or the deadline passes.
func wait(ch chan struct{}, deadline time.Time) error {
	if deadline.IsZero() {
		<-ch
		return nil
	}
	d := time.Until(deadline)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}

// memStream is one end of an in-memory stream.
type memStream struct {
	in, out *half
	dmu     sync.Mutex
	rdl     time.Time
	wdl     time.Time
}

// memPipe returns the two ends of a new stream; window is the flow
// control window of the direction from the second end to the first.
func memPipe(window int) (*memStream, *memStream) {
	if window <= 0 {
		window = pipeWindow
	}
	ab, ba := newHalf(pipeWindow), newHalf(window)
	return &memStream{in: ba, out: ab}, &memStream{in: ab, out: ba}
}

func (s *memStream) Read(p []byte) (int, error) {
	for {
		h := s.in
		h.mu.Lock()
		switch {
		case h.reset:
			err := h.resetErr(s)
			h.mu.Unlock()
			return 0, err
		case len(h.buf) > 0:
			n := copy(p, h.buf)
			h.buf = h.buf[n:]
			h.signal()
			h.mu.Unlock()
			return n, nil
		case h.closed:
			h.mu.Unlock()
			return 0, io.EOF
		}
		ch := h.changed
		h.mu.Unlock()
		s.dmu.Lock()
		dl := s.rdl
		s.dmu.Unlock()
		if err := wait(ch, dl); err != nil {
			return 0, err
		}
	}
}

func (s *memStream) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		h := s.out
		h.mu.Lock()
		switch {
		case h.reset:
			err := h.resetErr(s)
			h.mu.Unlock()
			return n, err
		case h.closed:
			h.mu.Unlock()
			return n, errors.New("write on a closed stream")
		case len(h.buf) < h.window:
			k := min(len(p)-n, h.window-len(h.buf))
			h.buf = append(h.buf, p[n:n+k]...)
			n += k
			h.signal()
			h.mu.Unlock()
			continue
		}
		ch := h.changed
		h.mu.Unlock()
		s.dmu.Lock()
		dl := s.wdl
		s.dmu.Unlock()
		if err := wait(ch, dl); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *memStream) CloseWrite() error {
	h := s.out
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		h.signal()
	}
	return nil
}

func (s *memStream) Close() error { return s.CloseWrite() }

func (s *memStream) Reset(code wire.Code) error {
	for _, h := range []*half{s.in, s.out} {
		h.mu.Lock()
		if !h.reset {
			h.reset, h.code, h.resetBy = true, code, s
			h.signal()
		}
		h.mu.Unlock()
	}
	return nil
}

func (s *memStream) SetReadDeadline(t time.Time) error {
	s.dmu.Lock()
	s.rdl = t
	s.dmu.Unlock()
	s.in.mu.Lock()
	s.in.signal() // waiters pick up the new deadline
	s.in.mu.Unlock()
	return nil
}

func (s *memStream) SetWriteDeadline(t time.Time) error {
	s.dmu.Lock()
	s.wdl = t
	s.dmu.Unlock()
	s.out.mu.Lock()
	s.out.signal()
	s.out.mu.Unlock()
	return nil
}

// memConn stands for the connection a sender's streams arrive on.
type memConn struct {
	mu      sync.Mutex
	streams []*memStream
	closed  bool
}

func (c *memConn) add(s *memStream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.streams = append(c.streams, s)
	return true
}

// Close resets every stream of the connection, as a closed QUIC
// connection does.
func (c *memConn) Close() error {
	c.mu.Lock()
	c.closed = true
	streams := c.streams
	c.streams = nil
	c.mu.Unlock()
	for _, s := range streams {
		_ = s.Reset(wire.CodeCanceled)
	}
	return nil
}

// memLink connects a sender to a Receiver in the same process: every Open
// hands the far end to the receiver's Handle, as its libp2p front does.
type memLink struct {
	ctx  context.Context
	r    *Receiver
	peer string
	// window, if set, is the flow control window of every stream from
	// the receiver: a small one stands for a sender that stops reading.
	window int

	mu   sync.Mutex
	conn *memConn
	wg   sync.WaitGroup
}

func (l *memLink) Connect(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		l.conn = &memConn{}
	}
	return nil
}

func (l *memLink) Open(ctx context.Context) (Stream, error) {
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	if conn == nil {
		return nil, errors.New("not connected")
	}
	a, b := memPipe(l.window)
	if !conn.add(a) || !conn.add(b) {
		return nil, errors.New("connection closed")
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.r.Handle(l.ctx, b, l.peer, conn)
	}()
	return a, nil
}

func (l *memLink) Relayed(Stream) bool { return false }
func (l *memLink) DirectNow() bool     { return true }

func (l *memLink) Drop() {
	l.mu.Lock()
	conn := l.conn
	l.conn = nil
	l.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// waitUnread blocks until the far end has written bytes that s has not
// read, or ctx ends.
func (s *memStream) waitUnread(ctx context.Context) error {
	for {
		h := s.in
		h.mu.Lock()
		n, ch := len(h.buf), h.changed
		h.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
