package main

import "syscall"

// childAttr has the kernel kill a child when the bench dies, even by
// SIGKILL, so that no dshare is left running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
