// Command dshare sends files and folders between machines, peer to peer.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
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
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// Errors can quote a peer's words; no escape sequence gets through.
		fmt.Fprintln(os.Stderr, "dshare:", dpeer.EscapeText(err.Error()))
		os.Exit(exitCode(err))
	}
}
