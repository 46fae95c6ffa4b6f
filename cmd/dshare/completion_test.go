package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func completion(t *testing.T, shell string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"completion", shell}, strings.NewReader(""), &out, &out); err != nil {
		t.Fatalf("completion %s: %v", shell, err)
	}
	return out.String()
}

// Every flag of every command, as its help lists it, is completed.
func TestCompletionHasEveryFlag(t *testing.T) {
	flags := commandFlags(context.Background())
	if len(flags["send"]) < 5 || len(flags["recv"]) < 5 {
		t.Fatalf("flags read from help: %v", flags)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		script := completion(t, shell)
		for c, fs := range flags {
			for _, f := range fs {
				want := f
				if shell == "fish" {
					want = "from " + c + "' -l " + strings.TrimPrefix(f, "--")
				}
				if !strings.Contains(script, want) {
					t.Errorf("%s completion lacks %s %s", shell, c, f)
				}
			}
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"completion", "tcsh"}, strings.NewReader(""), &out, &out); err == nil {
		t.Fatal("completion for an unknown shell succeeded")
	}
}

// The bash script completes commands and flags when bash runs it.
func TestCompletionBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join(t.TempDir(), "dshare.bash")
	if err := os.WriteFile(script, []byte(completion(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ words, want string }{
		{"dshare se", "send"},
		{"dshare send --lis", "--listen"},
		{"dshare recv --ov", "--overwrite"},
		{"dshare completion fi", "fish"},
	} {
		words := strings.Fields(c.words)
		prog := `source "$1"; COMP_WORDS=(` + strings.Join(words, " ") + `); COMP_CWORD=` +
			string(rune('0'+len(words)-1)) + `; _dshare; echo "${COMPREPLY[@]}"`
		out, err := exec.Command("bash", "-c", prog, "bash", script).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			t.Errorf("completing %q: %q %v, want %q", c.words, out, err, c.want)
		}
	}
}
