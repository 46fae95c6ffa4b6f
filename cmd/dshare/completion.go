package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

// commands are those completion offers, in the order help lists them.
var commands = []string{"send", "recv", "share", "ls", "get", "agent", "outbox", "inbox", "id", "trust", "relay", "completion"}

// commandFlags reads each command's flags from its own help, so that the
// completion never falls out of step with the flags.
func commandFlags(ctx context.Context) map[string][]string {
	out := map[string][]string{}
	for _, c := range commands {
		if c == "completion" {
			continue
		}
		var help bytes.Buffer
		_ = run(ctx, []string{c, "--help"}, strings.NewReader(""), &help, io.Discard)
		for _, line := range strings.Split(help.String(), "\n") {
			if f, ok := strings.CutPrefix(line, "  --"); ok {
				out[c] = append(out[c], "--"+strings.Fields(f)[0])
			}
		}
		sort.Strings(out[c])
	}
	return out
}

func runCompletion(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 {
		return usageError{"completion takes one shell: bash, zsh or fish"}
	}
	flags := commandFlags(ctx)
	var sb strings.Builder
	switch args[0] {
	case "bash":
		sb.WriteString("# dshare completion for bash: source it, or put it in ~/.local/share/bash-completion/completions/dshare\n")
		sb.WriteString("_dshare() {\n\tlocal cur=${COMP_WORDS[COMP_CWORD]} flags=\n")
		fmt.Fprintf(&sb, "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(commands, " "))
		sb.WriteString("\tcase \"${COMP_WORDS[1]}\" in\n")
		for _, c := range commands {
			if c == "completion" {
				fmt.Fprintf(&sb, "\tcompletion) COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\")); return ;;\n")
				continue
			}
			fmt.Fprintf(&sb, "\t%s) flags=%q ;;\n", c, strings.Join(flags[c], " "))
		}
		sb.WriteString("\tesac\n")
		sb.WriteString("\tif [[ $cur == -* ]]; then\n\t\tCOMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n\telse\n\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n\tfi\n}\n")
		sb.WriteString("complete -o filenames -F _dshare dshare\n")
	case "zsh":
		sb.WriteString("#compdef dshare\n# dshare completion for zsh: put it in a directory of $fpath as _dshare\n")
		sb.WriteString("_dshare() {\n\tif (( CURRENT == 2 )); then\n")
		fmt.Fprintf(&sb, "\t\tcompadd -- %s\n\t\treturn\n\tfi\n", strings.Join(commands, " "))
		sb.WriteString("\tcase $words[2] in\n")
		for _, c := range commands {
			if c == "completion" {
				sb.WriteString("\tcompletion) compadd -- bash zsh fish ;;\n")
				continue
			}
			fmt.Fprintf(&sb, "\t%s) _arguments -S", c)
			for _, f := range flags[c] {
				fmt.Fprintf(&sb, " '%s[]'", f)
			}
			sb.WriteString(" '*:file:_files' ;;\n")
		}
		sb.WriteString("\tesac\n}\n_dshare \"$@\"\n")
	case "fish":
		sb.WriteString("# dshare completion for fish: put it in ~/.config/fish/completions/dshare.fish\n")
		fmt.Fprintf(&sb, "complete -c dshare -n __fish_use_subcommand -f -a '%s'\n", strings.Join(commands, " "))
		sb.WriteString("complete -c dshare -n '__fish_seen_subcommand_from completion' -f -a 'bash zsh fish'\n")
		for _, c := range commands {
			for _, f := range flags[c] {
				fmt.Fprintf(&sb, "complete -c dshare -n '__fish_seen_subcommand_from %s' -l %s\n", c, strings.TrimPrefix(f, "--"))
			}
		}
	default:
		return usageError{fmt.Sprintf("no completion for %s; choose bash, zsh or fish", args[0])}
	}
	_, err := io.WriteString(e.stdout, sb.String())
	return err
}
