// Package discovery finds dshare receivers on the local network with
// multicast DNS: receivers announce themselves, senders only browse.
package discovery
