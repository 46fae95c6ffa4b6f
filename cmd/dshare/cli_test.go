package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/wire"
)

func testID(t *testing.T) lpeer.ID {
	_, pub, _ := crypto.GenerateEd25519Key(nil)
	id, err := lpeer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSplitTarget(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.txt")
	os.WriteFile(file, nil, 0o644)
	id := testID(t).String()
	addr := "/ip4/127.0.0.1/udp/4747/quic-v1/p2p/" + id
	tests := []struct {
		args   []string
		paths  int
		target string
	}{
		{[]string{file}, 1, ""},
		{[]string{file, id}, 1, id},
		{[]string{file, file, addr}, 2, addr},
		{[]string{file, "/not/a/multiaddr"}, 2, ""},
		{[]string{id}, 0, id},
	}
	for _, tt := range tests {
		paths, target := splitTarget(tt.args)
		if len(paths) != tt.paths || target != tt.target {
			t.Errorf("splitTarget(%q) = %q, %q", tt.args, paths, target)
		}
	}
	// A file named like a peer ID is a file.
	named := filepath.Join(dir, id)
	os.WriteFile(named, nil, 0o644)
	if paths, target := splitTarget([]string{named}); len(paths) != 1 || target != "" {
		t.Errorf("file named like a peer ID: %q %q", paths, target)
	}
}

func TestFlagsAnywhere(t *testing.T) {
	e := &env{stdout: new(bytes.Buffer)}
	fs := newFlags(e, "send", "send")
	n := fs.Int("streams", 1, "")
	pos, err := parse(e, fs, []string{"a", "--json", "b", "--streams", "3", "--", "--c"})
	if err != nil {
		t.Fatal(err)
	}
	if !e.json || *n != 3 || strings.Join(pos, " ") != "a b --c" {
		t.Fatalf("json %v streams %d pos %q", e.json, *n, pos)
	}
	var ue usageError
	if _, err := parse(e, newFlags(e, "x", "x"), []string{"--nope"}); !errors.As(err, &ue) {
		t.Fatalf("unknown flag: %v", err)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 1 << 30: "1.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestOfferPromptEscapesNames(t *testing.T) {
	o := &peer.Offer{Peer: testID(t).String(), Files: 1, Bytes: 3, Entries: []wire.Entry{{Path: "evil\x1b[2J\rname\u202e.txt", Size: 3}}}
	s := describeOffer(o)
	if strings.ContainsAny(s, "\x1b\r\u202e") {
		t.Fatalf("control characters reach the terminal: %q", s)
	}
}

func TestRecvRejectsWithoutTerminal(t *testing.T) {
	var stderr bytes.Buffer
	u := &recvUI{e: &env{stdin: strings.NewReader("y\n"), stderr: &stderr, events: &emitter{}}}
	err := u.decide(context.Background(), &peer.Offer{Peer: testID(t).String(), Files: 1})
	if !errors.Is(err, wire.ErrRejected) || !strings.Contains(stderr.String(), "--yes") {
		t.Fatalf("err %v, stderr %q", err, stderr.String())
	}
}

func TestHelpIsSuccess(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, nil, &out, &out); err != nil || !strings.Contains(out.String(), "dshare recv") {
		t.Fatalf("%v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"recv", "--help"}, nil, &out, &out); err != nil {
		t.Fatalf("recv --help: %v", err)
	}
}

func TestReachFlagConflicts(t *testing.T) {
	relay := "/ip4/7.0.0.1/udp/4747/quic-v1/p2p/" + testID(t).String()
	for _, args := range [][]string{
		{"recv", "--offline", "--relay", relay},
		{"recv", "--lan-only", "--bootstrap", relay},
		{"send", "--offline", "--bootstrap", relay, "x", testID(t).String()},
		{"recv", "--bootstrap", "/ip4/7.0.0.1/udp/4747/quic-v1"}, // no /p2p/ID
		{"relay", "--offline"},
		{"recv", "--max-bytes", "lots"},
		{"recv", "--from", "nobody"},
	} {
		home := t.TempDir()
		src := filepath.Join(home, "x")
		os.WriteFile(src, []byte("x"), 0o644)
		for i, a := range args {
			if a == "x" {
				args[i] = src
			}
		}
		var out, errb bytes.Buffer
		err := run(context.Background(), append(args, "--home", home), strings.NewReader(""), &out, &errb)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"1500": 1500, "2M": 2 << 20, "20G": 20 << 30, "1.5TiB": 3 << 39, "64k": 64 << 10, "50MB": 50 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5M", "lots", "5X", "1e30"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// JSON events carry a peer's words; bidirectional overrides and other
// format characters are escaped, and the line still decodes to them.
func TestEventsEscapeFormatCharacters(t *testing.T) {
	var buf bytes.Buffer
	em := &emitter{on: true, w: &buf}
	msg := "bad name invoice\u202efdp.exe\u2066x\U000e0001"
	em.emit("failed", map[string]any{"error": msg})
	line := buf.String()
	if strings.ContainsAny(line, "\u202e\u2066\U000e0001") {
		t.Fatalf("format characters reach the output: %q", line)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil || got["error"] != msg {
		t.Fatalf("line %q decodes to %v (%v)", line, got, err)
	}
}

// TestRelayFlags: a relay starts only when told whom to serve, and its
// limits must be sizes. Each case fails before any network is touched.
func TestRelayFlags(t *testing.T) {
	id := testID(t).String()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"relay"}, "a relay serves only the peers it is told to: pass --allow PEER or --allow-file FILE, or --open to serve anyone"},
		{[]string{"relay", "--peer-rate", "1M"}, "pass --allow PEER"},
		{[]string{"relay", "--open", "--allow", id}, "--open serves anyone"},
		{[]string{"relay", "--allow", "nobody"}, `bad --allow "nobody": not a peer ID`},
		{[]string{"relay", "--allow", id, "--max-rate", "fast"}, `bad --max-rate "fast"`},
		{[]string{"relay", "--allow", id, "--peer-quota", "-1"}, `bad --peer-quota "-1"`},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(tc.args, "--home", t.TempDir()), strings.NewReader(""), &out, &errb)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"relay", "--allow-file", filepath.Join(t.TempDir(), "missing"), "--home", t.TempDir()},
		strings.NewReader(""), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "allow-list") {
		t.Errorf("a missing --allow-file: %v, want an error about the allow-list", err)
	}
}
