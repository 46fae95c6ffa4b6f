// Package chunker tracks which byte ranges of a file are held and verified,
// hashes chunks with BLAKE3, and stores the resume state of a partial file.
// It works on io.ReaderAt and io.WriterAt and knows nothing of networks.
package chunker
