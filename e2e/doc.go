// Package e2e tests the real dshare binary, run as separate processes the
// way a user runs it.
package e2e
