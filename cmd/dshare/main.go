// Command dshare sends files and folders between machines, peer to peer.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	dpeer "github.com/dshare/dshare/peer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// Errors can quote a peer's words; no escape sequence gets through.
		fmt.Fprintln(os.Stderr, "dshare:", dpeer.EscapeText(err.Error()))
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
