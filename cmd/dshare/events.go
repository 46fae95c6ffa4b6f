package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

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
	em.mu.Lock()
	defer em.mu.Unlock()
	fmt.Fprintf(em.w, "%s\n", b)
}

// humanBytes formats n with binary units: "1.5 GiB".
func humanBytes(n uint64) string { return peer.FormatBytes(n) }
