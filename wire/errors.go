package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Errors found while reading frames. All of them are protocol violations.
var (
	ErrMalformed     = errors.New("malformed message")
	ErrUnknownType   = errors.New("unknown message type")
	ErrFrameTooLarge = errors.New("frame too large")
)

// Errors a request can end with. Each has a [Code] on the wire, so the
// remote side sees the same sentinel through errors.Is.
var (
	ErrInternal      = errors.New("internal error")
	ErrProtocol      = errors.New("protocol violation")
	ErrRejected      = errors.New("rejected")
	ErrUnauthorized  = errors.New("not authorized")
	ErrBadPath       = errors.New("unsafe path")
	ErrTooLarge      = errors.New("too large")
	ErrNoSpace       = errors.New("not enough disk space")
	ErrExists        = errors.New("file exists")
	ErrBusy          = errors.New("busy")
	ErrHashMismatch  = errors.New("hash mismatch")
	ErrSourceChanged = errors.New("source changed")
	ErrNotFound      = errors.New("not found")
	ErrCanceled      = errors.New("canceled")
	ErrLimit         = errors.New("limit exceeded")
	ErrVersion       = errors.New("unsupported protocol version")
	ErrTimeout       = errors.New("timed out")
	// ErrStorage: the receiver cannot write where it keeps files (no
	// permission, a read-only disk). Trying again does not help.
	ErrStorage = errors.New("the receiver cannot write its files")
)

// Code is an error code carried by [Error] and [Reject] frames and by stream
// resets. Codes are never renumbered; an unknown code maps to ErrInternal.
type Code uint16

const (
	CodeInternal      Code = 1
	CodeProtocol      Code = 2
	CodeRejected      Code = 3
	CodeUnauthorized  Code = 4
	CodeBadPath       Code = 5
	CodeTooLarge      Code = 6
	CodeNoSpace       Code = 7
	CodeExists        Code = 8
	CodeBusy          Code = 9
	CodeHashMismatch  Code = 10
	CodeSourceChanged Code = 11
	CodeNotFound      Code = 12
	CodeCanceled      Code = 13
	CodeLimit         Code = 14
	CodeVersion       Code = 15
	CodeTimeout       Code = 16
	CodeStorage       Code = 17
	lastCode               = CodeStorage
)

var codeErrs = map[Code]error{
	CodeInternal: ErrInternal, CodeProtocol: ErrProtocol, CodeRejected: ErrRejected,
	CodeUnauthorized: ErrUnauthorized, CodeBadPath: ErrBadPath, CodeTooLarge: ErrTooLarge,
	CodeNoSpace: ErrNoSpace, CodeExists: ErrExists, CodeBusy: ErrBusy,
	CodeHashMismatch: ErrHashMismatch, CodeSourceChanged: ErrSourceChanged,
	CodeNotFound: ErrNotFound, CodeCanceled: ErrCanceled, CodeLimit: ErrLimit,
	CodeVersion: ErrVersion, CodeTimeout: ErrTimeout, CodeStorage: ErrStorage,
}

// Err returns the sentinel error for c.
func (c Code) Err() error {
	if err, ok := codeErrs[c]; ok {
		return err
	}
	return ErrInternal
}

func (c Code) String() string {
	if err, ok := codeErrs[c]; ok {
		return err.Error()
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// CodeOf returns the code for err: the code of the first sentinel it wraps,
// CodeProtocol for framing errors, and CodeInternal otherwise.
func CodeOf(err error) Code {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownType), errors.Is(err, ErrFrameTooLarge):
		return CodeProtocol
	}
	for c := Code(1); c <= lastCode; c++ {
		if errors.Is(err, codeErrs[c]) {
			return c
		}
	}
	return CodeInternal
}

// RemoteError is an error the other side reported. errors.Is matches it
// against the sentinel of its code.
type RemoteError struct {
	Code    Code
	Message string
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return "peer: " + e.Code.String()
	}
	// A peer's message usually starts with its code's text already.
	if strings.HasPrefix(e.Message, e.Code.String()) {
		return "peer: " + e.Message
	}
	return "peer: " + e.Code.String() + ": " + e.Message
}

func (e *RemoteError) Is(target error) bool { return target == e.Code.Err() }
