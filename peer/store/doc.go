// Package store receives files into a directory so that nothing
// unverified ever appears under a final name. Chunks go into temporary
// files of dshare's own, in a private staging directory, keyed by who sent
// which file; a file is placed under its final name only once it is whole
// and its hash matches, by linking the very file that was verified. A
// journal remembers completed files, so that a re-offer is answered as
// held instead of being received twice.
package store
