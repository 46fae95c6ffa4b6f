//go:build !unix

package main

func withUmask(_ int, f func()) { f() }
