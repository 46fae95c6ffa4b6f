package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/dshare/dshare/wire"
)

func TestCheckPath(t *testing.T) {
	good := []string{"a", "a/b.txt", "dir/sub/file", "ünïcode/名前.txt", ".hidden", "a..b"}
	bad := []string{
		"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", ".", "..",
		`a\b`, `..\x`, "C:/x", "c:x", "a\x00b", "a\nb", "a\x1b[2Jb", "x\u202etxt.exe",
		strings.Repeat("x", 256), strings.Repeat("d/", 2049) + "f",
		".dshare/x", ".DShare", ".dshare", "\xff\xfe",
	}
	for _, p := range good {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v", p, err)
		}
	}
	for _, p := range bad {
		if err := CheckPath(p); !errors.Is(err, wire.ErrBadPath) {
			t.Errorf("CheckPath(%q) = %v, want ErrBadPath", p, err)
		}
	}
}

func TestCheckManifest(t *testing.T) {
	ok := []wire.Entry{{Path: "d", Dir: true}, {Path: "d/a"}, {Path: "d/e", Dir: true}}
	if err := CheckManifest(ok); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string][]wire.Entry{
		"duplicate":        {{Path: "a"}, {Path: "a"}},
		"file and dir":     {{Path: "a"}, {Path: "a/b"}},
		"bad path in list": {{Path: "ok"}, {Path: "../x"}},
	} {
		if err := CheckManifest(m); !errors.Is(err, wire.ErrBadPath) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestEscape(t *testing.T) {
	if Escape("plain name.txt") != "plain name.txt" || Escape("名前") != "名前" {
		t.Fatal("printable names must stay as they are")
	}
	if e := Escape("a\x1b[2Jb"); strings.ContainsRune(e, 0x1b) {
		t.Fatalf("escape sequence survived: %q", e)
	}
}

func TestCheckManifestCollisions(t *testing.T) {
	for name, m := range map[string][]wire.Entry{
		"case":             {{Path: "Readme.md"}, {Path: "README.md"}},
		"case in dir":      {{Path: "Docs/a"}, {Path: "docs/a"}},
		"NFC vs NFD":       {{Path: "caf\u00e9.txt"}, {Path: "cafe\u0301.txt"}},
		"folded ß":         {{Path: "straße"}, {Path: "STRASSE"}},
		"file, folded dir": {{Path: "x"}, {Path: "X/y"}},
	} {
		if err := CheckManifest(m); !errors.Is(err, wire.ErrBadPath) {
			t.Errorf("%s: %v, want ErrBadPath", name, err)
		}
	}
	if err := CheckManifest([]wire.Entry{{Path: "Docs", Dir: true}, {Path: "Docs/a"}, {Path: "docs2/a"}}); err != nil {
		t.Fatal(err)
	}
}

func TestReservedNames(t *testing.T) {
	for _, c := range []string{"CON", "con.txt", "Nul", "aux.tar.gz", "COM1", "lpt9.log", "COM¹", "a.", "b ", "x:y", "q?"} {
		if !reservedName("windows", c) {
			t.Errorf("%q should be reserved on windows", c)
		}
		if reservedName("linux", c) {
			t.Errorf("%q is fine on linux", c)
		}
	}
	for _, c := range []string{"console", "COM10", "LPT", "connect.txt", "nul_", "a.b"} {
		if reservedName("windows", c) {
			t.Errorf("%q is not reserved", c)
		}
	}
	if err := checkPath("windows", "dir/CON.txt"); !errors.Is(err, wire.ErrBadPath) {
		t.Errorf("checkPath(windows, dir/CON.txt) = %v", err)
	}
}

func TestEscapeText(t *testing.T) {
	for in, want := range map[string]string{
		"plain error: cause":                    "plain error: cause",
		"failed to dial:\n  * [/ip4/1] refused": "failed to dial: * [/ip4/1] refused",
		"evil\x1b[2J name\u202etxt.exe":         `evil\u001b[2J name\u202etxt.exe`,
		"  leading and trailing \n":             "leading and trailing",
	} {
		if got := EscapeText(in); got != want {
			t.Errorf("EscapeText(%q) = %q, want %q", in, got, want)
		}
	}
}
