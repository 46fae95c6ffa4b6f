// Command dshare sends files and folders between machines, peer to peer.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	golog "github.com/ipfs/go-log/v2"

	dpeer "github.com/dshare/dshare/peer"
)

func main() {
	// Libraries that log on their own (zeroconf does) never reach the
	// terminal: dshare says what matters itself.
	log.SetOutput(io.Discard)
	if os.Getenv("GOLOG_LOG_LEVEL") == "" {
		golog.SetupLogging(golog.Config{Level: golog.LevelFatal}) // no output at all
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile(os.Getenv("DSHARE_CPUPROFILE"))
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	stopProfile()
	if err != nil {
		// Errors can quote a peer's words; no escape sequence gets through.
		fmt.Fprintln(os.Stderr, "dshare:", dpeer.EscapeText(err.Error()))
		os.Exit(exitCode(err))
	}
}

// startProfile writes a CPU profile of this process to path (with the
// process ID appended, so that a sender and a receiver on one machine can
// share the setting) until the returned function is called. Read it with
// `go tool pprof`.
func startProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dshare: DSHARE_CPUPROFILE:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "dshare: DSHARE_CPUPROFILE:", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
