//go:build !linux

package main

import "io"

// flushInput does nothing where the terminal cannot be flushed this way;
// lines read before a question are still dropped.
func flushInput(io.Reader) {}
