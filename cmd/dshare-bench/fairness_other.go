//go:build !linux

package main

import (
	"errors"
	"io"
)

var errLinuxOnly = errors.New("fairness runs on Linux only: it needs network namespaces and TUN devices")

func fairnessMain([]string, io.Writer, io.Writer) error { return errLinuxOnly }
func tcpSinkMain([]string, io.Writer) error             { return errLinuxOnly }
func tcpSourceMain([]string, io.Writer) error           { return errLinuxOnly }
