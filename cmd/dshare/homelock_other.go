//go:build !unix

package main

// lockHome does nothing where flock is not available.
func lockHome(string) (unlock func(), err error) { return func() {}, nil }
