package peer

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TrustedFile lists, in the dshare home, the peers whose offers a
// receiver accepts without asking: one peer ID per line, # for comments.
const TrustedFile = "trusted"

// LoadTrusted reads the trusted-peers list; a missing file is empty.
func LoadTrusted(home string) (map[peer.ID]bool, error) {
	name := filepath.Join(home, TrustedFile)
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return map[peer.ID]bool{}, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[peer.ID]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, err := peer.Decode(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: not a peer ID: %w", name, n, err)
		}
		out[id] = true
	}
	return out, sc.Err()
}

// AddTrusted appends id to the trusted-peers list.
func AddTrusted(home string, id peer.ID, note string) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(home, TrustedFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	line := id.String()
	if note != "" {
		line += "  # " + strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return ' '
			}
			return r
		}, note)
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
