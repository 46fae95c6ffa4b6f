// Command rawquic is the speed baseline for dshare's benchmarks: it moves
// bytes over one plain go-libp2p QUIC stream between two processes, with
// no files, hashing or protocol of dshare's.
//
//	rawquic listen            prints its multiaddr, reads one stream to the end
//	rawquic send ADDR BYTES   writes BYTES zeros and waits for the count back
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"
)

const proto = "/dshare-bench/raw/1"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rawquic:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: rawquic listen | rawquic send ADDR BYTES")
	}
	h, err := libp2p.New(libp2p.NoTransports, libp2p.Transport(quic.NewTransport),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"), libp2p.DisableRelay())
	if err != nil {
		return err
	}
	defer h.Close()
	switch args[0] {
	case "listen":
		done := make(chan error, 1)
		h.SetStreamHandler(proto, func(s network.Stream) {
			n, err := io.Copy(io.Discard, bufio.NewReaderSize(s, 1<<20))
			if err == nil {
				err = binary.Write(s, binary.BigEndian, uint64(n))
			}
			s.Close()
			done <- err
		})
		fmt.Printf("%s/p2p/%s\n", h.Addrs()[0], h.ID())
		select {
		case err := <-done:
			time.Sleep(100 * time.Millisecond) // let the count reach the sender
			return err
		case <-time.After(10 * time.Minute):
			return fmt.Errorf("no sender within 10 minutes")
		}
	case "send":
		if len(args) != 3 {
			return fmt.Errorf("usage: rawquic send ADDR BYTES")
		}
		a, err := ma.NewMultiaddr(args[1])
		if err != nil {
			return err
		}
		info, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return err
		}
		total, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := h.Connect(ctx, *info); err != nil {
			return err
		}
		s, err := h.NewStream(ctx, info.ID, proto)
		if err != nil {
			return err
		}
		buf := make([]byte, 1<<20)
		for left := total; left > 0; {
			n := min(left, int64(len(buf)))
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
		return nil
	}
	return fmt.Errorf("unknown mode %q", args[0])
}
