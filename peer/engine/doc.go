// Package engine speaks dshare's transfer protocol over an interface of
// streams: the receiving side, which writes through peer/store, and the
// sending side, which reads through peer/source. It knows nothing of
// libp2p; package peer adapts libp2p streams to it, and its unit tests
// run it over in-memory pipes.
package engine
