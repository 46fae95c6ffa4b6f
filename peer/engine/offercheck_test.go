package engine

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/dshare/dshare/wire"
)

func TestCheckOffer(t *testing.T) {
	ok := &wire.Offer{ChunkSize: 1 << 20, Files: 2, Bytes: 10}
	entries := []wire.Entry{{Path: "d", Dir: true}, {Path: "d/f", Size: 10}}
	if total, err := CheckOffer(ok, entries); err != nil || total != 10 {
		t.Fatalf("CheckOffer = %d, %v", total, err)
	}
	for name, tc := range map[string]struct {
		o    wire.Offer
		e    []wire.Entry
		want error
	}{
		"zero chunk":       {wire.Offer{Files: 1, Bytes: 1}, []wire.Entry{{Path: "a", Size: 1}}, wire.ErrProtocol},
		"tiny chunk":       {wire.Offer{ChunkSize: 1, Files: 1, Bytes: 1}, []wire.Entry{{Path: "a", Size: 1}}, wire.ErrProtocol},
		"odd chunk":        {wire.Offer{ChunkSize: 3 << 20, Files: 1, Bytes: 1}, []wire.Entry{{Path: "a", Size: 1}}, wire.ErrProtocol},
		"count lie":        {wire.Offer{ChunkSize: 1 << 20, Files: 2, Bytes: 1}, []wire.Entry{{Path: "a", Size: 1}}, wire.ErrProtocol},
		"bytes lie":        {wire.Offer{ChunkSize: 1 << 20, Files: 1, Bytes: 5}, []wire.Entry{{Path: "a", Size: 1}}, wire.ErrProtocol},
		"overflow":         {wire.Offer{ChunkSize: 1 << 20, Files: 2}, []wire.Entry{{Path: "a", Size: 1 << 63}, {Path: "b", Size: 1 << 63}}, wire.ErrTooLarge},
		"too many chunks":  {wire.Offer{ChunkSize: 64 << 10, Files: 1, Bytes: 1 << 40}, []wire.Entry{{Path: "a", Size: 1 << 40}}, wire.ErrTooLarge},
		"sized directory":  {wire.Offer{ChunkSize: 1 << 20, Files: 1, Bytes: 4}, []wire.Entry{{Path: "a", Dir: true, Size: 4}}, wire.ErrProtocol},
		"unsafe path":      {wire.Offer{ChunkSize: 1 << 20, Files: 1, Bytes: 1}, []wire.Entry{{Path: "../a", Size: 1}}, wire.ErrBadPath},
		"largest possible": {wire.Offer{ChunkSize: 1 << 20, Files: 1, Bytes: 1<<64 - 1}, []wire.Entry{{Path: "a", Size: 1<<64 - 1}}, wire.ErrTooLarge},
	} {
		if _, err := CheckOffer(&tc.o, tc.e); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// FuzzCheckOffer checks that whatever manifest CheckOffer accepts names
// only local, clean, printable, distinct paths.
func FuzzCheckOffer(f *testing.F) {
	for _, s := range [][2]string{
		{"a.txt", "b/c"}, {"../x", "y"}, {"A", "a"}, {"caf\u00e9", "cafe\u0301"}, {"d", "d/e"},
		{"x\x1b[2J", "ok"}, {`a\b`, "C:/x"}, {".x.dshare-part", "CON"}, {"a//b", "/abs"},
	} {
		f.Add(s[0], s[1], false, uint64(5), uint32(1<<20))
	}
	f.Fuzz(func(t *testing.T, a, b string, bDir bool, size uint64, chunk uint32) {
		e := []wire.Entry{{Path: a, Size: size}, {Path: b, Dir: bDir}}
		o := &wire.Offer{ChunkSize: chunk, Files: 2, Bytes: size}
		if _, err := CheckOffer(o, e); err != nil {
			return
		}
		if n := size/uint64(chunk) + min(size%uint64(chunk), 1); n > maxChunks {
			t.Fatalf("accepted %d chunks of %d bytes", n, chunk)
		}
		for _, p := range []string{a, b} {
			if !filepath.IsLocal(p) || path.Clean(p) != p || strings.Contains(p, `\`) || !utf8.ValidString(p) {
				t.Fatalf("accepted unsafe path %q", p)
			}
			for _, r := range p {
				if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
					t.Fatalf("accepted %q with a control character", p)
				}
			}
		}
		if foldKey(a) == foldKey(b) || strings.HasPrefix(foldKey(b), foldKey(a)+"/") {
			t.Fatalf("accepted colliding %q and %q", a, b)
		}
	})
}
