// Package wire defines dshare's messages and how they are framed on a stream.
//
// A frame is a 5-byte header, one byte of [Type] and a big-endian uint32 body
// length, followed by a CBOR body with integer keys. A [Data] frame is
// followed by Data.Length raw payload bytes that are not part of the CBOR
// body. Lengths are checked against [MaxBodySize] and [MaxChunkSize] before
// anything is allocated.
package wire
