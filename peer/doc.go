// Package peer runs dshare's transfer protocol over libp2p streams: the
// host and its identity, the sending side and the receiving side.
package peer
