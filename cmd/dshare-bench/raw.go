package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
)

// The raw baseline moves bytes over one plain go-libp2p QUIC stream
// between two processes, with no files, hashing or protocol of dshare's:
// what dshare's numbers are measured against. The bench runs itself in
// these two hidden modes.
//
//	dshare-bench raw-listen            prints its multiaddr, reads one stream to the end
//	dshare-bench raw-send ADDR BYTES   writes BYTES zeros, waits for the count back,
//	                                   prints {"seconds":…,"first_byte":…,"total_seconds":…}

const rawProto = "/dshare-bench/raw/1"

// rawTimeout bounds each raw process, so that a baseline that hangs
// cannot hang the bench; 256 MiB at 1 % loss takes about 8 minutes.
const rawTimeout = 30 * time.Minute

// rawHost is a libp2p host with QUIC only, on loopback, without relays.
func rawHost() (host.Host, error) {
	return libp2p.New(libp2p.NoTransports, libp2p.Transport(quic.NewTransport),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"), libp2p.DisableRelay())
}

func rawListen(args []string) error {
	if len(args) != 0 {
		return errors.New("usage: dshare-bench raw-listen")
	}
	h, err := rawHost()
	if err != nil {
		return err
	}
	defer h.Close()
	done := make(chan error, 1)
	h.SetStreamHandler(rawProto, func(s network.Stream) {
		n, err := io.Copy(io.Discard, bufio.NewReaderSize(s, 1<<20))
		if err == nil {
			err = binary.Write(s, binary.BigEndian, uint64(n))
		}
		s.Close()
		select {
		case done <- err:
		default: // a second stream is not part of the baseline
		}
	})
	fmt.Printf("%s/p2p/%s\n", h.Addrs()[0], h.ID())
	select {
	case err := <-done:
		time.Sleep(100 * time.Millisecond) // let the count reach the sender
		return err
	case <-time.After(rawTimeout):
		return fmt.Errorf("no sender within %v", rawTimeout)
	}
}

// rawReport is what raw-send prints, in the units of dshare's done event.
type rawReport struct {
	Seconds      float64 `json:"seconds"`       // stream opened to count confirmed
	FirstByte    float64 `json:"first_byte"`    // since the process started
	TotalSeconds float64 `json:"total_seconds"` // since the process started
}

func rawSend(args []string, started time.Time) error {
	if len(args) != 2 {
		return errors.New("usage: dshare-bench raw-send ADDR BYTES")
	}
	a, err := ma.NewMultiaddr(args[0])
	if err != nil {
		return err
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return err
	}
	total, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || total < 0 {
		return fmt.Errorf("BYTES must be a count of bytes, not %q", args[1])
	}
	h, err := rawHost()
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	if err := h.Connect(ctx, *info); err != nil {
		return err
	}
	s, err := h.NewStream(ctx, info.ID, rawProto)
	if err != nil {
		return err
	}
	// The stream obeys the deadline too, not only the dial.
	if err := s.SetDeadline(time.Now().Add(rawTimeout)); err != nil {
		return err
	}
	opened := time.Now()
	var first time.Time
	buf := make([]byte, 1<<20)
	for left := total; left > 0; {
		n := min(left, int64(len(buf)))
		if first.IsZero() {
			// As dshare stamps it: just before the first data is
			// written, not when a big write is taken, which waits for
			// flow control.
			first = time.Now()
		}
		if _, err := s.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	var got uint64
	if err := binary.Read(s, binary.BigEndian, &got); err != nil {
		return err
	}
	if got != uint64(total) {
		return fmt.Errorf("receiver counted %d of %d bytes", got, total)
	}
	end := time.Now()
	if first.IsZero() {
		first = end
	}
	return json.NewEncoder(os.Stdout).Encode(rawReport{
		Seconds:      end.Sub(opened).Seconds(),
		FirstByte:    first.Sub(started).Seconds(),
		TotalSeconds: end.Sub(started).Seconds(),
	})
}
