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

func runTrust(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "trust", "trust PEER [NOTE]")
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageError{"trust takes a peer ID and an optional note"}
	}
	id, err := peer.Decode(pos[0])
	if err != nil {
		return usageError{fmt.Sprintf("%q is not a peer ID", pos[0])}
	}
	note := ""
	if len(pos) == 2 {
		note = pos[1]
	}
	if err := dpeer.AddTrusted(e.home, id, note); err != nil {
		return err
	}
	e.events.emit("trusted", map[string]any{"peer": id.String()})
	if !e.json {
		fmt.Fprintf(e.stderr, "Offers from %s will be accepted without asking.\n", id)
	}
	return nil
}
