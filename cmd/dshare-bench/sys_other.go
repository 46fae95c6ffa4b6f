//go:build !linux

package main

import "syscall"

// childAttr: without Pdeathsig, children are killed through their context.
func childAttr() *syscall.SysProcAttr { return nil }
