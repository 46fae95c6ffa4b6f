package peer

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// AllowList says which peers may reserve a slot on a relay: peers named
// on the command line, plus those in a file that can be read again while
// the relay runs. It is safe for concurrent use.
type AllowList struct {
	static map[peer.ID]bool
	file   string

	mu       sync.RWMutex
	fromFile map[peer.ID]bool
}

// NewAllowList returns a list of ids, plus the peers in file unless file
// is empty. It fails if the file cannot be read or holds a bad line.
func NewAllowList(ids []peer.ID, file string) (*AllowList, error) {
	a := &AllowList{static: map[peer.ID]bool{}, file: file}
	for _, id := range ids {
		a.static[id] = true
	}
	if file != "" {
		if err := a.Reload(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Reload reads the file again. On an error the list stays as it was.
func (a *AllowList) Reload() error {
	if a.file == "" {
		return nil
	}
	f, err := os.Open(a.file)
	if err != nil {
		return fmt.Errorf("allow-list: %w", err)
	}
	defer f.Close()
	ids, err := ParseAllowList(f)
	if err != nil {
		return fmt.Errorf("allow-list %s: %w", a.file, err)
	}
	a.mu.Lock()
	a.fromFile = ids
	a.mu.Unlock()
	return nil
}

// Allowed reports whether p may reserve a slot.
func (a *AllowList) Allowed(p peer.ID) bool {
	if a.static[p] {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.fromFile[p]
}

// Len returns the number of distinct peers on the list.
func (a *AllowList) Len() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	n := len(a.static)
	for id := range a.fromFile {
		if !a.static[id] {
			n++
		}
	}
	return n
}

// maxAllowLine bounds a line of an allow-list file; a peer ID is about
// 52 characters.
const maxAllowLine = 4096

// ParseAllowList reads one peer ID per line. Blank lines are skipped, and
// '#' starts a comment that runs to the end of the line.
func ParseAllowList(r io.Reader) (map[peer.ID]bool, error) {
	out := map[peer.ID]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxAllowLine)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, err := peer.Decode(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s is not a peer ID", n, EscapeText(shorten(line, 60)))
		}
		out[id] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
