package peer

import (
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/dshare/dshare/peer/engine"
	"github.com/dshare/dshare/peer/source"
)

// ProtocolID is dshare's libp2p protocol; the number is the major version.
const ProtocolID protocol.ID = "/dshare/1"

// ServiceName names dshare's streams to the libp2p resource manager.
const ServiceName = "dshare"

const connectTimeout = 15 * time.Second

// The engine's types, as the front ends use them.
type (
	Progress     = engine.Progress
	FileProgress = engine.FileProgress
	Offer        = engine.Offer
	Event        = engine.Event
	EventKind    = engine.EventKind
	FileResult   = engine.FileResult
	Limits       = engine.Limits
	SendOptions  = engine.SendOptions
	Result       = engine.Result
	LinkStats    = engine.LinkStats
	Manifest     = source.Manifest
)

// Event kinds.
const (
	EventAccepted = engine.EventAccepted
	EventProgress = engine.EventProgress
	EventDone     = engine.EventDone
	EventFailed   = engine.EventFailed
	EventRejected = engine.EventRejected
	EventFile     = engine.EventFile
)

// Defaults.
const (
	DefaultChunkSize      = engine.DefaultChunkSize
	DefaultStreams        = engine.DefaultStreams
	DefaultIdleTimeout    = engine.DefaultIdleTimeout
	DefaultStreamsPerPeer = engine.DefaultStreamsPerPeer
	DefaultMemory         = engine.DefaultMemory
	MaxNameLen            = engine.MaxNameLen
)

// Re-exported helpers.
var (
	BuildManifest = source.BuildManifest
	ErrSource     = source.ErrSource
	Escape        = engine.Escape
	EscapeText    = engine.EscapeText
	FormatBytes   = engine.FormatBytes
	JournalPath   = engine.JournalPath
	CheckPath     = engine.CheckPath
)
