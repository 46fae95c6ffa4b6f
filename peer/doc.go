// Package peer is dshare's libp2p front: the host and its identity,
// relays and hole punching, resource limits, and the adapters that run
// the transfer engine (package peer/engine) over libp2p streams.
package peer
