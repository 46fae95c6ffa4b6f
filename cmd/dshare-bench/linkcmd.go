package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
)

// linkMain runs the link emulator alone, for tests that need a lossy or
// long path between two real dshare processes:
//
//	dshare-bench link --to 127.0.0.1:PORT [--rate BITS/S] [--rtt D] [--queue BYTES] [--loss P] [--seed N]
//
// It prints {"listening":"127.0.0.1:PORT"} on stdout, forwards until its
// stdin closes, then prints both directions' counts as one JSON line.
func linkMain(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("dshare-bench link", flag.ContinueOnError)
	to := fs.String("to", "", "forward to this loopback `ADDR:PORT`")
	rate := fs.Float64("rate", 0, "link rate in bits/s, each direction (0: unlimited)")
	rtt := fs.Duration("rtt", 0, "round-trip time added, half each way")
	queue := fs.Int("queue", 0, "bytes waiting for the link at most, each direction (0: unlimited)")
	loss := fs.Float64("loss", 0, "probability that a packet is lost, each direction")
	seed := fs.Uint64("seed", 1, "seed of the losses")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	target, err := net.ResolveUDPAddr("udp4", *to)
	if err != nil || fs.NArg() != 0 {
		return fmt.Errorf("%w: link needs --to ADDR:PORT and no other arguments", errUsage)
	}
	e, err := newNetem(target, linkConfig{Rate: *rate, Delay: *rtt / 2, Queue: *queue, Loss: *loss}, *seed)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(map[string]string{"listening": e.addr().String()}); err != nil {
		e.close()
		return err
	}
	_, _ = io.Copy(io.Discard, stdin) // the parent's way to stop it, even if it dies
	up, down := e.stats()
	e.close()
	return enc.Encode(map[string]linkStats{"up": up, "down": down})
}
