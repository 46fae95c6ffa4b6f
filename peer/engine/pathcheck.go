package engine

import (
	"fmt"
	"hash/maphash"
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
	for i, rest := 0, p; rest != ""; i++ {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		switch {
		case c == "." || c == "..":
			return bad("dot component")
		case len(c) > maxComponent:
			return bad("component too long")
		case i == 0 && len(c) >= 2 && c[1] == ':':
			return bad("drive letter")
		case i == 0 && foldKey(c) == foldKey(store.StageName):
			return bad("dshare's own directory")
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

func foldKey(p string) string {
	lower := true
	for i := range len(p) {
		c := p[i]
		if c >= 0x80 {
			return norm.NFC.String(folder.String(norm.NFD.String(p)))
		}
		lower = lower && !('A' <= c && c <= 'Z')
	}
	// ASCII: normalization changes nothing and folding is lower-casing.
	if lower {
		return p
	}
	return strings.ToLower(p)
}

// CheckManifest checks every path and that no two entries clash, also
// after case folding and Unicode normalization: on a receiver whose
// filesystem folds them, two such entries would write the same file.
//
// Folded paths are kept as 64-bit hashes, not strings, so that checking a
// million entries costs little memory; equal hashes are compared in full.
func CheckManifest(entries []wire.Entry) error {
	seed := maphash.MakeSeed()
	fold := func(p string) uint64 { return foldHash(seed, p) }
	folded := make(map[uint64]int32, len(entries)) // hash of folded path -> entry
	for i, e := range entries {
		if err := CheckPath(e.Path); err != nil {
			return err
		}
		h := fold(e.Path)
		for {
			j, dup := folded[h]
			if !dup {
				break
			}
			other := entries[j].Path
			if other == e.Path {
				return fmt.Errorf("%w: %s: offered twice", wire.ErrBadPath, Escape(e.Path))
			}
			if foldKey(other) == foldKey(e.Path) {
				return fmt.Errorf("%w: %s and %s name the same file on case-insensitive or normalizing filesystems",
					wire.ErrBadPath, Escape(other), Escape(e.Path))
			}
			h++ // a collision of different names: probe on
		}
		folded[h] = int32(i)
	}
	// Every directory above an entry that the manifest lists must be a
	// directory. The nearest listed one is checked; its own entry covers
	// what is above it.
	lookup := func(dir string) (int32, bool) {
		k := foldKey(dir)
		for h := fold(dir); ; h++ {
			j, ok := folded[h]
			if !ok {
				return 0, false
			}
			if foldKey(entries[j].Path) == k {
				return j, true
			}
		}
	}
	for _, e := range entries {
		for dir := path.Dir(e.Path); dir != "."; dir = path.Dir(dir) {
			if j, ok := lookup(dir); ok {
				if !entries[j].Dir {
					return fmt.Errorf("%w: %s is both a file and a directory", wire.ErrBadPath, Escape(entries[j].Path))
				}
				break
			}
		}
	}
	return nil
}

// foldHash hashes foldKey(p), without building it for ASCII paths.
func foldHash(seed maphash.Seed, p string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for i := range len(p) {
		c := p[i]
		if c >= 0x80 {
			h.Reset()
			h.WriteString(foldKey(p))
			return h.Sum64()
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h.WriteByte(c)
	}
	return h.Sum64()
}

// EscapeText makes a message safe for one line of a terminal: runs of
// whitespace, newlines included, become one space, and control and
// format characters (escape sequences, bidirectional overrides) are
// shown as \uXXXX. Unlike Escape it adds no quotes, so that an error
// reads as a sentence.
func EscapeText(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t' || r == ' ':
			space = true
			continue
		case space:
			b.WriteByte(' ')
		}
		space = false
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
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
