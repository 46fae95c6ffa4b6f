package engine

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// Paths a transfer's data can take.
const (
	PathDirect  = "direct"
	PathRelayed = "relayed"
)

// Defaults for a transfer.
const (
	DefaultChunkSize = 256 << 10
	DefaultStreams   = 8
	MaxDataStreams   = 64                     // per transfer, on the receiver
	commitInterval   = 200 * time.Millisecond // fsync, then confirm to the sender
	stateInterval    = 10 * time.Millisecond  // record written chunks for a resume
	// A receiver reads a chunk from its stream, and hashes it, this much
	// at a time, so that it is hashed while in the CPU's cache.
	hashStep = 32 << 10
	// The receiver reports at least this often, so that a sender can tell
	// a silent peer from a slow one.
	heartbeatInterval = 2 * time.Second
	stallTimeout      = 15 * time.Second
)

func newReqID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// Progress reports bytes the receiver has confirmed: verified and durable
// on its disk.
type Progress struct {
	Confirmed, Total uint64
	Sent             uint64         // sender: payload bytes written in this run
	Received         uint64         // receiver: payload bytes read in this session
	Files            []FileProgress // files whose numbers changed since the last report
}

// FileProgress is the confirmed state of one file.
type FileProgress struct {
	Index     int
	Path      string
	Size      uint64
	Confirmed uint64
	Complete  bool
}
