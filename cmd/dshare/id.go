package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	dpeer "github.com/dshare/dshare/peer"
)

func runID(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "id", "id [--home DIR]")
	if _, err := parse(e, fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	key, err := dpeer.LoadIdentity(e.home)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	if e.json {
		e.events.emit("id", map[string]any{"peer": id.String()})
		return nil
	}
	fmt.Fprintln(e.stdout, id)
	return nil
}
