package engine

import (
	"fmt"
	"path"
	"runtime"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/dshare/dshare/peer/store"
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
func CheckPath(p string) error { return checkPath(runtime.GOOS, p) }

func checkPath(goos, p string) error {
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
		case i == 0 && foldKey(c) == foldKey(store.StageName):
			return bad("dshare's own directory")
		case strings.HasSuffix(c, partSuffix) || strings.HasSuffix(c, stateSuffix) ||
			strings.HasSuffix(c, stateSuffix+".tmp"):
			return bad("dshare's own file name")
		case reservedName(goos, c):
			return bad("name reserved on " + goos)
		}
	}
	return nil
}

// reservedName reports whether a path component cannot be created as a
// plain file on goos. Windows maps device names (with any extension) to
// devices and silently strips trailing dots and spaces.
func reservedName(goos, c string) bool {
	if goos != "windows" {
		return false
	}
	if strings.ContainsAny(c, `<>:"|?*`) || strings.HasSuffix(c, ".") || strings.HasSuffix(c, " ") {
		return true
	}
	stem, _, _ := strings.Cut(strings.ToUpper(c), ".")
	stem = strings.TrimRight(stem, " ")
	switch stem {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if strings.HasPrefix(stem, "COM") || strings.HasPrefix(stem, "LPT") {
		switch n := stem[3:]; n {
		case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
			return true
		}
	}
	return false
}

// foldKey maps names that one filesystem or another treats as the same
// file (case-insensitive on macOS and Windows, normalizing on macOS) to
// one key.
var folder = cases.Fold()

func foldKey(p string) string { return norm.NFC.String(folder.String(norm.NFD.String(p))) }

// CheckManifest checks every path and that no two entries clash, also
// after case folding and Unicode normalization: on a receiver whose
// filesystem folds them, two such entries would write the same file.
func CheckManifest(entries []wire.Entry) error {
	kind := make(map[string]bool, len(entries)) // path -> is directory
	folded := make(map[string]string, len(entries))
	for _, e := range entries {
		if err := CheckPath(e.Path); err != nil {
			return err
		}
		if _, dup := kind[e.Path]; dup {
			return fmt.Errorf("%w: %s: offered twice", wire.ErrBadPath, Escape(e.Path))
		}
		kind[e.Path] = e.Dir
		k := foldKey(e.Path)
		if other, dup := folded[k]; dup {
			return fmt.Errorf("%w: %s and %s name the same file on case-insensitive or normalizing filesystems",
				wire.ErrBadPath, Escape(other), Escape(e.Path))
		}
		folded[k] = e.Path
	}
	for p := range kind {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if isDir, ok := kind[folded[foldKey(dir)]]; ok && !isDir {
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
