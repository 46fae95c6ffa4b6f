package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dshare/dshare/peer"
)

// emitter writes newline-delimited JSON events when --json is on.
type emitter struct {
	mu sync.Mutex
	w  io.Writer
	on bool
}

// emit writes one event object: {"event": name, ...fields}.
func (em *emitter) emit(name string, fields map[string]any) {
	if !em.on {
		return
	}
	obj := map[string]any{"event": name}
	for k, v := range fields {
		obj[k] = v
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return
	}
	b = escapeFormat(b)
	em.mu.Lock()
	defer em.mu.Unlock()
	fmt.Fprintf(em.w, "%s\n", b)
}

// humanBytes formats n with binary units: "1.5 GiB".
func humanBytes(n uint64) string { return peer.FormatBytes(n) }

// escapeFormat rewrites, in marshaled JSON, the characters that
// encoding/json leaves as they are but that can deceive whoever reads
// the line: format characters such as bidirectional overrides, and other
// control characters. They only occur inside strings, where \uXXXX
// means the same.
func escapeFormat(b []byte) []byte {
	clean := true
	for _, r := range string(b) {
		if r >= 0x80 && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	for _, r := range string(b) {
		if r >= 0x80 && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				out = fmt.Appendf(out, "\\u%04x\\u%04x", r1, r2)
			} else {
				out = fmt.Appendf(out, "\\u%04x", r)
			}
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}
