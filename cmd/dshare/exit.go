package main

import (
	"errors"
	"runtime/debug"

	"github.com/dshare/dshare/wire"
)

// Exit codes, documented in the README and in --help.
const (
	exitOK          = 0
	exitFailed      = 1 // anything else: network, disk, a peer's error
	exitUsage       = 2 // a mistake in the command line
	exitRejected    = 3 // the other side said no, or refused this peer
	exitInterrupted = 4 // Ctrl-C or SIGTERM during a transfer
)

// errInterrupted marks a command stopped by a signal.
var errInterrupted = errors.New("interrupted")

// exitCode maps what a command returned to its exit code.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.Is(err, wire.ErrRejected), errors.Is(err, wire.ErrUnauthorized):
		return exitRejected
	}
	return exitFailed
}

// exitKind names an exit code in --json error events.
func exitKind(code int) string {
	switch code {
	case exitUsage:
		return "usage"
	case exitInterrupted:
		return "interrupted"
	case exitRejected:
		return "rejected"
	}
	return "failed"
}

// version is the module version, or the commit dshare was built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "devel " + rev + dirty
	}
	if v == "" {
		return "devel"
	}
	return v
}
