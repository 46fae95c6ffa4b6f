package store

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNumbered(t *testing.T) {
	for _, tt := range []struct {
		in   string
		i    int
		want string
	}{
		{"a.txt", 0, "a.txt"},
		{"a.txt", 1, "a (1).txt"},
		{"a.txt", 12, "a (12).txt"},
		{"a", 1, "a (1)"},
		{".bashrc", 1, ".bashrc (1)"},           // a dotfile has no extension
		{".config.json", 2, ".config (2).json"}, // but a dotfile with one keeps it
		{"archive.tar.gz", 1, "archive.tar (1).gz"},
		{"dir/a.txt", 3, "dir/a (3).txt"},
		{"d.x/readme", 1, "d.x/readme (1)"}, // a dot in the directory is no extension
		{"d/e/.profile", 1, "d/e/.profile (1)"},
		{"Привет.txt", 1, "Привет (1).txt"},
	} {
		if got := numbered(tt.in, tt.i); got != tt.want {
			t.Errorf("numbered(%q, %d) = %q, want %q", tt.in, tt.i, got, tt.want)
		}
	}
}

// TestNumberedLong checks that a numbered name of a name at NAME_MAX
// stays within it, stays valid UTF-8, and keeps the extension.
func TestNumberedLong(t *testing.T) {
	longExt := "x." + strings.Repeat("e", maxName-2) // all extension
	for _, tt := range []struct {
		name, base string
		ext        string // kept as is
	}{
		{"ascii", strings.Repeat("a", maxName-4) + ".txt", ".txt"},
		{"no extension", strings.Repeat("a", maxName), ""},
		{"dotfile", "." + strings.Repeat("a", maxName-1), ""},
		{"2-byte runes", strings.Repeat("é", (maxName-4)/2) + ".txt", ".txt"},
		{"3-byte runes", "a" + strings.Repeat("語", (maxName-5)/3) + ".txt", ".txt"},
		{"4-byte runes", strings.Repeat("😀", maxName/4) + "abc", ""},
		{"runes in extension", strings.Repeat("a", 200) + "." + strings.Repeat("ü", 27), "." + strings.Repeat("ü", 27)},
		{"long extension", longExt, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.base) > maxName {
				t.Fatalf("test name is %d bytes", len(tt.base))
			}
			for _, i := range []int{1, 10, 999} {
				for _, dir := range []string{"", "sub/dir/"} {
					got := numbered(dir+tt.base, i)
					d, base := path.Split(got)
					if d != dir {
						t.Errorf("numbered(%q, %d) = %q: directory changed", dir+tt.base, i, got)
					}
					if len(base) > maxName || base == "" {
						t.Errorf("numbered(…, %d) is %d bytes, NAME_MAX is %d", i, len(base), maxName)
					}
					if !utf8.ValidString(base) {
						t.Errorf("numbered(…, %d) = %q is not valid UTF-8", i, base)
					}
					if !strings.HasSuffix(base, tt.ext) {
						t.Errorf("numbered(…, %d) = %q lost extension %q", i, base, tt.ext)
					}
					if tag := " (" + itoa(i) + ")"; !strings.Contains(base, tag) {
						t.Errorf("numbered(…, %d) = %q has no %q", i, base, tag)
					}
					if base == tt.base {
						t.Errorf("numbered(…, %d) returned the name itself", i)
					}
				}
			}
		})
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
