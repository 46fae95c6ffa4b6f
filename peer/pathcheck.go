package peer

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dshare/dshare/wire"
)

// Limits on names in an offer, checked before anything is written.
const (
	maxComponent = 255
	maxPath      = 4096
	partSuffix   = ".dshare-part"
	stateSuffix  = ".dshare-state"
)

// CheckPath returns an error wrapping wire.ErrBadPath unless p is a
// relative, clean, slash-separated path that is safe to create below the
// target directory.
func CheckPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s: %s", wire.ErrBadPath, Escape(p), why) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > maxPath:
		return bad("too long")
	case !utf8.ValidString(p):
		return bad("not UTF-8")
	case strings.HasPrefix(p, "/"):
		return bad("absolute")
	case strings.Contains(p, `\`):
		return bad("backslash")
	case path.Clean(p) != p:
		return bad("not clean")
	}
	for _, r := range p {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return bad("control character")
		}
		if unicode.Is(unicode.Bidi_Control, r) {
			return bad("bidirectional control character") // hides a name's real extension
		}
	}
	for i, c := range strings.Split(p, "/") {
		switch {
		case c == "." || c == "..":
			return bad("dot component")
		case len(c) > maxComponent:
			return bad("component too long")
		case i == 0 && len(c) >= 2 && c[1] == ':':
			return bad("drive letter")
		case strings.HasSuffix(c, partSuffix) || strings.HasSuffix(c, stateSuffix):
			return bad("dshare's own file name")
		}
	}
	return nil
}

// CheckManifest checks every path and that no two entries clash.
func CheckManifest(entries []wire.Entry) error {
	kind := make(map[string]bool, len(entries)) // path -> is directory
	for _, e := range entries {
		if err := CheckPath(e.Path); err != nil {
			return err
		}
		if _, dup := kind[e.Path]; dup {
			return fmt.Errorf("%w: %s: offered twice", wire.ErrBadPath, Escape(e.Path))
		}
		kind[e.Path] = e.Dir
	}
	for p := range kind {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if isDir, ok := kind[dir]; ok && !isDir {
				return fmt.Errorf("%w: %s is both a file and a directory", wire.ErrBadPath, Escape(dir))
			}
		}
	}
	return nil
}

// Escape quotes s for display so that no control character or escape
// sequence reaches a terminal.
func Escape(s string) string {
	q := strconv.Quote(s) // escapes control and format characters
	if q[1:len(q)-1] == s {
		return s
	}
	return q
}
