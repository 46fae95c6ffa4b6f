package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/peer/mailbox"
	"github.com/dshare/dshare/peer/pair"
	"github.com/dshare/dshare/wire"
)

// queueOptions are send's flags for --queue.
type queueOptions struct {
	priority int
	tags     listFlag
	note     string
	snapshot bool
	announce string
}

func addQueueFlags(fs *flag.FlagSet, q *queueOptions) *bool {
	on := fs.Bool("queue", false, "hand the send to the running agent, which delivers it when PEER is online (see dshare agent)")
	fs.IntVar(&q.priority, "priority", 0, "with --queue: deliver before this peer's items of lower `N`")
	fs.Var(&q.tags, "tag", "with --queue: label the delivery with `T` in the receiver's inbox (repeatable)")
	fs.StringVar(&q.note, "note", "", "with --queue: a `TEXT` the receiver sees with the delivery")
	fs.BoolVar(&q.snapshot, "snapshot", false, "with --queue: send a copy taken now, so the files may change meanwhile")
	fs.StringVar(&q.announce, "announce", "quiet", "with --queue: quiet, or notify to have the receiving agent tell its user")
	return on
}

// queueSend hands paths for target to the agent and prints the item ID.
func queueSend(e *env, paths []string, target string, q *queueOptions) error {
	if target == "" {
		return usageError{"--queue needs the PEER to deliver to: a peer ID, its address, or its ticket"}
	}
	if q.announce != "quiet" && q.announce != "notify" {
		return usageError{"--announce is quiet or notify"}
	}
	if len(q.note) > wire.MaxNoteLen || len(q.tags) > wire.MaxTags {
		return usageError{fmt.Sprintf("--note is at most %d bytes, and at most %d --tag", wire.MaxNoteLen, wire.MaxTags)}
	}
	for _, t := range q.tags {
		if len(t) > wire.MaxTagLen {
			return usageError{fmt.Sprintf("a --tag is at most %d bytes", wire.MaxTagLen)}
		}
	}
	// The item names the peer by ID, with where it is now as a hint: a
	// queued delivery outlives addresses, and proves no ticket (the
	// receiving agent must accept the sender: --from, or dshare trust).
	var addrs []string
	switch {
	case pair.LooksLikeTicket(target):
		info, _, err := parseTicketTarget(target)
		if err != nil {
			return err
		}
		target = info.ID.String()
		for _, a := range info.Addrs {
			addrs = append(addrs, a.String())
		}
	case pair.LooksLikeCode(target):
		return usageError{"a code lasts 10 minutes, too short for a queued delivery; give the peer ID or ticket"}
	case strings.HasPrefix(target, "/"):
		a, err := ma.NewMultiaddr(target)
		if err != nil {
			return usageError{fmt.Sprintf("bad PEER %q: %v", target, err)}
		}
		info, err := lpeer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return usageError{fmt.Sprintf("bad PEER %q: %v", target, err)}
		}
		target = info.ID.String()
		for _, a := range info.Addrs {
			addrs = append(addrs, a.String())
		}
	default:
		if _, err := lpeer.Decode(target); err != nil {
			return usageError{fmt.Sprintf("%s is not a peer ID, an address or a ticket", target)}
		}
	}
	it := &mailbox.Item{Peer: target, Addrs: addrs, Priority: q.priority, Tags: q.tags, Note: q.note, Announce: q.announce}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		it.Paths = append(it.Paths, abs)
	}
	// Readable now, or said now; and, unless copied, what each file must
	// still be when it is delivered.
	m, err := peer.BuildManifest(it.Paths)
	if err != nil {
		return err
	}
	for i, en := range m.Entries {
		it.Bytes += en.Size
		if !q.snapshot && !en.Dir {
			it.Stamps = append(it.Stamps, mailbox.Stamp{Path: m.Sources[i], Size: int64(en.Size), MTime: en.MTime})
		}
	}
	a, err := callAgent(e.home, &controlRequest{Op: "queue", Item: it, Snapshot: q.snapshot})
	if err != nil {
		return err
	}
	e.events.emit("queued", map[string]any{"id": a.ID, "peer": target, "priority": q.priority, "bytes": it.Bytes})
	if !e.json {
		fmt.Fprintf(e.stderr, "Queued as item %d for %s; see dshare outbox.\n", a.ID, target)
	}
	return nil
}

func runOutbox(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "outbox", "outbox [cancel ID | retry ID]")
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) > 0 {
		if len(pos) != 2 || (pos[0] != "cancel" && pos[0] != "retry") {
			return usageError{"outbox takes nothing, or cancel ID, or retry ID"}
		}
		id, err := strconv.ParseUint(pos[1], 10, 64)
		if err != nil {
			return usageError{fmt.Sprintf("%s is not an item ID", pos[1])}
		}
		if _, err := callAgent(e.home, &controlRequest{Op: pos[0], ID: id}); err != nil {
			return err
		}
		e.events.emit(pos[0]+"ed", map[string]any{"id": id})
		if !e.json {
			fmt.Fprintf(e.stderr, "Item %d: %s.\n", id, map[string]string{"cancel": "canceled", "retry": "queued again"}[pos[0]])
		}
		return nil
	}
	a, err := callAgent(e.home, &controlRequest{Op: "list"})
	if err != nil {
		return err
	}
	for _, it := range a.Items {
		e.events.emit("item", map[string]any{"id": it.ID, "state": it.State, "peer": it.Peer, "priority": it.Priority,
			"attempts": it.Attempts, "error": it.Error, "bytes": it.Bytes, "sent": it.Sent, "tags": it.Tags, "note": it.Note,
			"snapshot": it.Snapshot != "", "created": it.Created})
		if e.json {
			continue
		}
		line := fmt.Sprintf("%4d  %-9s  prio %-3d  %s  %s of %s, %d attempt(s)", it.ID, it.State, it.Priority, it.Peer,
			humanBytes(it.Sent), humanBytes(it.Bytes), it.Attempts)
		if it.Error != "" {
			line += ": " + peer.EscapeText(it.Error)
		}
		fmt.Fprintln(e.stdout, line)
	}
	return nil
}

func runInbox(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "inbox", "inbox [--peer PEER] [--tag T] [--since DURATION]")
	from := fs.String("peer", "", "only what came from `PEER`")
	tag := fs.String("tag", "", "only deliveries labelled `T`")
	since := fs.Duration("since", 0, "only what arrived in the last `DURATION` (e.g. 24h)")
	pos, err := parse(e, fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("inbox takes no arguments (got '%s')", pos[0])}
	}
	f := mailbox.Filter{Peer: *from, Tag: *tag}
	if *since > 0 {
		f.Since = time.Now().Add(-*since)
	}
	entries, err := inboxOf(e.home).List(f)
	if err != nil {
		return fmt.Errorf("cannot read the inbox: %w", err)
	}
	for _, en := range entries {
		e.events.emit("entry", map[string]any{"id": en.ID, "time": en.Time, "peer": en.Peer, "via": en.Via, "dir": en.Dir,
			"files": en.Files, "file_count": en.FileCount, "bytes": en.Bytes, "tags": en.Tags, "note": en.Note})
		if e.json {
			continue
		}
		fmt.Fprintf(e.stdout, "%4d  %s  %s  %s, %s, via %s", en.ID, en.Time.Format("2006-01-02 15:04"), en.Peer, count(int(en.FileCount), "file"), humanBytes(en.Bytes), en.Via)
		if len(en.Tags) > 0 {
			fmt.Fprintf(e.stdout, "  [%s]", strings.Join(en.Tags, ", "))
		}
		if en.Note != "" {
			fmt.Fprintf(e.stdout, "  %q", en.Note)
		}
		fmt.Fprintln(e.stdout)
		for i, f := range en.Files {
			if i == 5 {
				fmt.Fprintf(e.stdout, "        ... and %d more\n", int(en.FileCount)-i)
				break
			}
			fmt.Fprintf(e.stdout, "        %s  %s  %s\n", peer.Escape(filepath.Join(en.Dir, f.Name)), humanBytes(f.Size), f.Root[:16])
		}
	}
	return nil
}
