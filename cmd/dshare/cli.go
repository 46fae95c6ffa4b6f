package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"
)

const usage = `dshare sends files and folders between machines, peer to peer.

Usage:
  dshare recv [--dir DIR] [--yes] [--once]     wait for files
  dshare send PATH... [PEER]                   send files or folders
  dshare id                                    print this machine's peer ID
  dshare trust PEER [NOTE]                     accept PEER's offers without asking
  dshare agent [--dir DIR]                     receive, and deliver queued sends when peers come online
  dshare send --queue PATH... PEER             queue a send with the agent (see dshare outbox)
  dshare outbox [cancel|retry ID]              what the agent has yet to deliver
  dshare inbox [--peer P] [--tag T]            what arrived, from recv, get and the agent
  dshare share DIR                             serve a folder to anyone with its ticket
  dshare ls TICKET [PATH]                      list what a sharer serves
  dshare get TICKET [PATH]... [--dir DIR]      fetch files or folders from a sharer
  dshare relay                                 run a relay and DHT node on a server
  dshare completion bash|zsh|fish              print a shell completion script

PEER is the code or the ticket recv prints, a peer ID, or a multiaddr
ending in /p2p/ID. A code is looked for on the local network and in the
DHT; a ticket holds the receiver's addresses. A peer ID is looked up
on the local network and in the DHT at once; without PEER, send looks for
receivers on the local network. Peers behind NATs meet through relays and
then connect directly by hole punching.

Examples:
  dshare recv                                  # on the receiving machine
  dshare send photos/ report.pdf               # finds the receiver on the LAN
  dshare send big.iso gravity-elbow-spawn-oak  # by the code recv printed
  dshare send big.iso 12D3KooW...              # to a specific receiver
  dshare recv --json --yes --once --dir inbox  # for scripts

Flags for every command:
  --home DIR   identity and state (env DSHARE_HOME; default %s)
  --json       newline-delimited JSON events on stdout instead of bars
  --offline    no discovery traffic at all; dial only given addresses
  --lan-only   (send, recv) no DHT, relays or hole punching

Run "dshare COMMAND --help" for a command's own flags.
`

// usageError is a mistake in the command line; main exits 2 for it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// env is what every command gets: its streams and the common flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	home           string
	json           bool
	offline        bool
	events         *emitter
	help           func() // prints the command's usage
}

// interactive reports whether both stdin and stderr are terminals, so a
// question can be asked and seen.
func (e *env) interactive() bool { return isTerminal(e.stdin) && isTerminal(e.stderr) }

// showBars reports whether progress bars should be drawn.
func (e *env) showBars() bool { return !e.json && isTerminal(e.stderr) }

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func defaultHome() string {
	if h := os.Getenv("DSHARE_HOME"); h != "" {
		return h
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ".dshare"
	}
	return filepath.Join(dir, "dshare")
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, defaultHome())
		return usageError{"no command given; see the usage above"}
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	defer func() {
		// With --json, a failure is an event too, so that a script
		// reading stdout learns how the command ended.
		if err != nil && e.events != nil {
			code := exitCode(err)
			e.events.emit("error", map[string]any{"error": err.Error(), "exit": code, "kind": exitKind(code)})
		}
	}()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprintf(stdout, usage, defaultHome())
		return nil
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, "dshare", version())
		return nil
	case "id":
		return runID(ctx, e, rest)
	case "recv", "receive":
		return runRecv(ctx, e, rest)
	case "send":
		return runSend(ctx, e, rest)
	case "trust":
		return runTrust(ctx, e, rest)
	case "relay":
		return runRelay(ctx, e, rest)
	case "share":
		return runShare(ctx, e, rest)
	case "agent":
		return runAgent(ctx, e, rest)
	case "outbox":
		return runOutbox(ctx, e, rest)
	case "inbox":
		return runInbox(ctx, e, rest)
	case "ls":
		return runLs(ctx, e, rest)
	case "get":
		return runGet(ctx, e, rest)
	case "completion":
		return runCompletion(ctx, e, rest)
	}
	return usageError{fmt.Sprintf("unknown command '%s'; run dshare --help for the list", cmd)}
}

// newFlags returns a flag set with the flags every command has.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned once; help goes to stdout
	fs.StringVar(&e.home, "home", defaultHome(), "identity and state `dir`ectory (env DSHARE_HOME)")
	fs.BoolVar(&e.json, "json", false, "print newline-delimited JSON events on stdout")
	fs.BoolVar(&e.offline, "offline", false, "send no discovery traffic; dial only given addresses")
	fs.Usage = func() {} // flag calls it on errors too; help is printed only when asked for
	e.help = func() { printHelp(e.stdout, fs, synopsis) }
	return fs
}

// printHelp writes a command's usage with its flags spelled --flag, as
// everywhere else in dshare.
func printHelp(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: dshare %s\n\nFlags:\n", synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(text, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintf(w, "\nExit codes: %d ok, %d failed, %d usage, %d rejected, %d interrupted.\n",
		exitOK, exitFailed, exitUsage, exitRejected, exitInterrupted)
}

// parse parses flags anywhere among the arguments, so that
// "dshare send FILE PEER --json" works, and returns the positionals.
func parse(e *env, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				e.help()
				return nil, flag.ErrHelp
			}
			return nil, usageError{fmt.Sprintf("%s; run dshare %s --help for its flags", err, fs.Name())}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// flag stops at "--" or at the first positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	e.events = &emitter{w: e.stdout, on: e.json}
	return pos, nil
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
