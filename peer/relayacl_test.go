package peer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestParseAllowList(t *testing.T) {
	a, b := newID(t), newID(t)
	for _, tc := range []struct {
		name, in string
		want     []peer.ID
		err      string
	}{
		{name: "empty", in: ""},
		{name: "one", in: a.String() + "\n", want: []peer.ID{a}},
		{name: "no final newline", in: a.String(), want: []peer.ID{a}},
		{name: "comments and blanks", in: "# team\n\n  " + a.String() + "  # alice\r\n#" + b.String() + "\n", want: []peer.ID{a}},
		{name: "two, twice", in: a.String() + "\n" + b.String() + "\n" + a.String() + "\n", want: []peer.ID{a, b}},
		{name: "bad line", in: a.String() + "\nnot-a-peer\n", err: "line 2: not-a-peer is not a peer ID"},
		{name: "two on a line", in: a.String() + " " + b.String() + "\n", err: "line 1:"},
		{name: "control characters escaped", in: "\x1b[31mred\n", err: `line 1: \u001b[31mred is not`},
		{name: "line too long", in: strings.Repeat("x", maxAllowLine+1), err: "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAllowList(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d peers, want %d", len(got), len(tc.want))
			}
			for _, id := range tc.want {
				if !got[id] {
					t.Fatalf("%s missing", id)
				}
			}
		})
	}
}

func TestAllowListReload(t *testing.T) {
	a, b, c := newID(t), newID(t), newID(t)
	file := filepath.Join(t.TempDir(), "allow")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(b.String() + "\n")
	l, err := NewAllowList([]peer.ID{a}, file)
	if err != nil {
		t.Fatal(err)
	}
	check := func(want map[peer.ID]bool, n int) {
		t.Helper()
		for id, ok := range want {
			if l.Allowed(id) != ok {
				t.Fatalf("Allowed(%s) = %v, want %v", id, !ok, ok)
			}
		}
		if l.Len() != n {
			t.Fatalf("Len() = %d, want %d", l.Len(), n)
		}
	}
	check(map[peer.ID]bool{a: true, b: true, c: false}, 2)

	write("# b left, c joined\n" + c.String() + "\n" + a.String() + "\n")
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	check(map[peer.ID]bool{a: true, b: false, c: true}, 2) // a is counted once

	write(c.String() + "\nnonsense\n")
	if err := l.Reload(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("reload of a bad file: %v, want an error naming line 2", err)
	}
	check(map[peer.ID]bool{a: true, b: false, c: true}, 2) // unchanged

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); err == nil {
		t.Fatal("reload of a missing file succeeded")
	}
	check(map[peer.ID]bool{a: true, c: true}, 2)

	if _, err := NewAllowList(nil, file); err == nil {
		t.Fatal("a missing file at start was accepted")
	}
}
