package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
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
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
