package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The import rules of ARCHITECTURE.md, enforced over `go list -deps`.
// Allow-lists name module path prefixes; a prefix matches itself and
// every package below it ("golang.org/x/sys" matches
// "golang.org/x/sys/unix", not "golang.org/x/sysfoo"). A package's own
// subtree is always allowed. When a library's own dependencies change,
// add them here, next to the library that needs them.
var (
	// wire: bytes only. CBOR and what CBOR itself needs.
	archWireAllow = []string{"github.com/fxamacker/cbor/v2", "github.com/x448/float16"}
	// chunker: the hash and what the hash itself needs (cpuid reads
	// golang.org/x/sys on darwin).
	archChunkerAllow = []string{"lukechampine.com/blake3", "github.com/klauspost/cpuid/v2", "golang.org/x/sys"}
	// The network stack, which wire, chunker, peer/store, peer/source and
	// peer/engine never reach.
	archNoNetwork = []archDeny{
		{"github.com/libp2p", "wire, chunker, peer/store, peer/source and peer/engine never reach the network stack (libp2p)"},
		{"github.com/multiformats", "wire, chunker, peer/store, peer/source and peer/engine never reach the network stack (multiformats)"},
	}
)

// archRules returns the dependency rules for the module mod.
func archRules(mod string) []archRule {
	storeAllow := []string{"golang.org/x/sys", "golang.org/x/text", mod + "/chunker", mod + "/wire"}
	storeAllow = append(append(storeAllow, archWireAllow...), archChunkerAllow...)
	return []archRule{
		{
			pkg:   "wire",
			what:  "wire is bytes only: the standard library and CBOR",
			allow: archWireAllow,
			deny:  archNoNetwork,
		},
		{
			pkg:   "chunker",
			what:  "chunker is the standard library and the hash only, no network and no dshare package",
			allow: archChunkerAllow,
			deny:  archNoNetwork,
		},
		{
			pkg:   "peer/store",
			what:  "peer/store is the standard library, golang.org/x/sys, golang.org/x/text, chunker and wire only",
			allow: storeAllow,
			deny: append(slices.Clone(archNoNetwork),
				archDeny{mod + "/peer", "peer/store sits below the protocol engine and never imports dshare/peer"}),
		},
		{
			pkg:   "peer/source",
			what:  "peer/source reads local files: the standard library, golang.org/x/sys and wire only",
			allow: append([]string{"golang.org/x/sys", mod + "/wire"}, archWireAllow...),
			deny:  archNoNetwork,
		},
		{
			pkg: "peer/engine",
			what: "peer/engine speaks the protocol over an interface of streams: " +
				"wire, chunker, peer/store, peer/source and text libraries, never libp2p",
			allow: append(slices.Clone(storeAllow), mod+"/peer/store", mod+"/peer/source"),
			// The allow-list keeps out dshare/peer, the libp2p front above it.
			deny: append(slices.Clone(archNoNetwork), archDeny{mod + "/cmd", "peer/engine never imports the CLI"}),
		},
		{
			pkg: "peer/pair",
			what: "peer/pair proves a shared code or ticket over any stream: the standard library, wire, " +
				"golang.org/x/crypto and the BIP-39 word list, never libp2p",
			allow: append([]string{"golang.org/x/crypto", "golang.org/x/sys", "github.com/tyler-smith/go-bip39", mod + "/wire"}, archWireAllow...),
			deny:  archNoNetwork,
		},
		{
			pkg:   "peer/mailbox",
			what:  "peer/mailbox keeps the outbox and inbox databases: the standard library and bbolt only, no network",
			allow: []string{"go.etcd.io/bbolt", "golang.org/x/sys"},
			deny:  archNoNetwork,
		},
		{
			pkg: "discovery",
			what: "discovery finds peers and wraps libp2p discovery; " +
				"it never imports the protocol engine or the CLI",
			deny: []archDeny{
				{mod + "/peer", "discovery never imports dshare/peer"},
				{mod + "/cmd", "discovery never imports the CLI"},
			},
		},
	}
}

// archPlatforms are the targets whose import graphs are checked besides
// the host's, so that a file built only on another OS cannot slip a
// dependency past the rules.
var archPlatforms = []string{"linux/amd64", "darwin/arm64", "windows/amd64"}

// archPkg is the part of `go list -json` that the rules read.
type archPkg struct {
	ImportPath     string
	Name           string
	Dir            string
	Standard       bool
	Imports        []string
	GoFiles        []string
	CgoFiles       []string
	IgnoredGoFiles []string
	Module         *struct {
		Path string
		Main bool
	}
	Error *struct{ Err string }
}

const archFields = "ImportPath,Name,Dir,Standard,Imports,GoFiles,CgoFiles,IgnoredGoFiles,Module,Error"

// archRule restricts what one package of the module may depend on.
type archRule struct {
	pkg      string     // path relative to the module root
	what     string     // the rule, as a person reads it
	allow    []string   // non-standard dependencies allowed; nil: no allow-list
	deny     []archDeny // dependencies forbidden, standard or not
	optional bool       // the package may not exist yet
}

type archDeny struct{ prefix, why string }

// archUnder reports whether path is prefix or a package below it.
func archUnder(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// archCheckDeps checks rule against the import graph pkgs (keyed by
// import path) of module mod and returns one message per violation. A
// missing package is reported as ok=false, so that the caller decides.
//
// Only the first offending package on each import path is reported: if
// wire imported go-libp2p, the report names that import, not the two
// hundred packages behind it.
func archCheckDeps(mod string, pkgs map[string]*archPkg, rule archRule) (violations []string, ok bool) {
	root := mod + "/" + rule.pkg
	if pkgs[root] == nil {
		return nil, false
	}
	own := func(p string) bool { return archUnder(p, root) }
	standard := func(p string) bool {
		if q := pkgs[p]; q != nil {
			return q.Standard
		}
		// Not listed (only in a fake graph): the go command's own test,
		// no dot in the first path element.
		first, _, _ := strings.Cut(p, "/")
		return !strings.Contains(first, ".")
	}
	if rule.allow != nil {
		allowed := func(p string) bool {
			if own(p) || standard(p) {
				return true
			}
			for _, a := range rule.allow {
				if archUnder(p, a) {
					return true
				}
			}
			return false
		}
		archWalk(pkgs, root, allowed, func(chain []string) {
			bad := chain[len(chain)-1]
			violations = append(violations, fmt.Sprintf(
				"%s: %s imports %s (%s), which the allow-list does not cover.\n\trule: %s (allowed: the standard library, %s)",
				rule.pkg, archShort(mod, chain[len(chain)-2]), bad, archChain(mod, chain),
				rule.what, strings.Join(rule.allow, ", ")))
		})
	}
	for _, d := range rule.deny {
		denied := func(p string) bool { return archUnder(p, d.prefix) && !own(p) }
		archWalk(pkgs, root, func(p string) bool { return !denied(p) }, func(chain []string) {
			violations = append(violations, fmt.Sprintf(
				"%s: %s imports %s (%s), which is forbidden.\n\trule: %s",
				rule.pkg, archShort(mod, chain[len(chain)-2]), chain[len(chain)-1],
				archChain(mod, chain), d.why))
		})
	}
	return violations, true
}

// archWalk walks the import graph breadth-first from root, descending only
// into packages that pass ok, and calls bad with the import chain from
// root to each package that fails it, once per package, in a stable order.
func archWalk(pkgs map[string]*archPkg, root string, ok func(string) bool, bad func(chain []string)) {
	parent := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		var imports []string
		if q := pkgs[p]; q != nil {
			imports = slices.Sorted(slices.Values(q.Imports))
		}
		for _, imp := range imports {
			if _, seen := parent[imp]; seen || imp == "C" {
				continue
			}
			parent[imp] = p
			if !ok(imp) {
				var chain []string
				for q := imp; q != ""; q = parent[q] {
					chain = append(chain, q)
				}
				slices.Reverse(chain)
				bad(chain)
				continue
			}
			queue = append(queue, imp)
		}
	}
}

// archShort names the module's own packages by their directory.
func archShort(mod, p string) string {
	if rel, ok := strings.CutPrefix(p, mod+"/"); ok {
		return rel
	}
	return p
}

func archChain(mod string, chain []string) string {
	short := make([]string, len(chain))
	for i, p := range chain {
		short[i] = archShort(mod, p)
	}
	return strings.Join(short, " → ")
}

// archPrintSelectors are the qualified names through which library code
// would reach the terminal, by standard package; a name ending in "*"
// matches every name that starts with it.
var archPrintSelectors = map[string][]string{
	"fmt": {"Print*"},
	"os":  {"Stdout", "Stderr"},
	"log": {"Print*", "Fatal*", "Panic*"},
}

// archScanFile parses one Go source file and returns "file:line: what"
// for each place it writes to the terminal: fmt.Print*, os.Stdout,
// os.Stderr, log.Print*/Fatal*/Panic* and the print and println
// builtins. It works on the syntax tree, so comments and strings that
// mention these names do not count, renamed imports do, and a name
// declared in the file (a parameter called os, a func print) shadows the
// package or builtin. A file of package main is skipped.
func archScanFile(name string, src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, 0)
	if err != nil {
		return nil, err
	}
	if f.Name.Name == "main" {
		return nil, nil
	}
	// Local name → standard package, for the packages above.
	names := map[string]string{}
	var found []string
	report := func(pos token.Pos, what string) {
		p := fset.Position(pos)
		found = append(found, fmt.Sprintf("%s:%d: %s", p.Filename, p.Line, what))
	}
	for _, spec := range f.Imports {
		path, _ := strconv.Unquote(spec.Path.Value)
		if _, watched := archPrintSelectors[path]; !watched {
			continue
		}
		local := path
		if spec.Name != nil {
			local = spec.Name.Name
		}
		if local == "." {
			report(spec.Pos(), "dot-import of "+path+" hides its terminal writes")
			continue
		}
		names[local] = path
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			// id.Obj is set when the parser resolved the name to a
			// declaration in this file, never for an imported package.
			id, ok := n.X.(*ast.Ident)
			if !ok || id.Obj != nil {
				return true
			}
			pkg, ok := names[id.Name]
			if !ok {
				return true
			}
			for _, sel := range archPrintSelectors[pkg] {
				if base, ok := strings.CutSuffix(sel, "*"); ok && strings.HasPrefix(n.Sel.Name, base) || sel == n.Sel.Name {
					report(n.Pos(), pkg+"."+n.Sel.Name)
				}
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "print" || id.Name == "println") && id.Obj == nil {
				report(n.Pos(), id.Name+"(")
			}
		}
		return true
	})
	return found, nil
}

// archGoList runs `go list -e -deps -json` on every package of the module
// rooted at dir, for goos/goarch ("" for the host), and returns the
// packages by import path and the main module's path.
func archGoList(ctx context.Context, dir, goos, goarch string) (map[string]*archPkg, string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-deps", "-json="+archFields, "./...")
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if goos != "" {
		cmd.Env = append(cmd.Env, "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, "", fmt.Errorf("go list (GOOS=%s GOARCH=%s): %w\n%s", goos, goarch, err, stderr.Bytes())
	}
	pkgs := map[string]*archPkg{}
	mod := ""
	dec := json.NewDecoder(&stdout)
	for {
		p := new(archPkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, "", fmt.Errorf("go list output: %w", err)
		}
		pkgs[p.ImportPath] = p
		if p.Module != nil && p.Module.Main {
			mod = p.Module.Path
		}
	}
	if mod == "" {
		return nil, "", fmt.Errorf("go list in %s found no package of the main module", dir)
	}
	return pkgs, mod, nil
}

// archNoFiles reports whether a go list error only says that the package
// has no Go files for this platform.
func archNoFiles(p *archPkg) bool {
	return p.Error != nil && (strings.Contains(p.Error.Err, "no Go files") ||
		strings.Contains(p.Error.Err, "build constraints exclude all Go files"))
}

// TestArchitecture enforces the import rules and the "only cmd prints"
// rule of ARCHITECTURE.md on the module's non-test code.
func TestArchitecture(t *testing.T) {
	timeout := 2 * time.Minute
	if d, ok := t.Deadline(); ok && time.Until(d)-5*time.Second < timeout {
		timeout = max(time.Until(d)-5*time.Second, time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}

	host := runtime.GOOS + "/" + runtime.GOARCH
	platforms := append([]string{""}, slices.DeleteFunc(slices.Clone(archPlatforms), func(p string) bool { return p == host })...)
	var hostPkgs map[string]*archPkg
	var mod string
	for _, plat := range platforms {
		goos, goarch, _ := strings.Cut(plat, "/")
		name := plat
		if plat == "" {
			name = host
		}
		pkgs, m, err := archGoList(ctx, root, goos, goarch)
		if err != nil {
			t.Fatal(err)
		}
		if plat == "" {
			hostPkgs, mod = pkgs, m
		}
		for _, rule := range archRules(m) {
			p := pkgs[m+"/"+rule.pkg]
			switch {
			case p == nil && rule.optional:
				if plat == "" {
					t.Logf("%s: no such package yet; its import rules are skipped", rule.pkg)
				}
				continue
			case p == nil:
				t.Errorf("%s: package not found by go list; ARCHITECTURE.md and this test name it", rule.pkg)
				continue
			case archNoFiles(p):
				continue
			case p.Error != nil:
				t.Errorf("%s (%s): go list: %s; its imports cannot be checked", rule.pkg, name, p.Error.Err)
			}
			violations, _ := archCheckDeps(m, pkgs, rule)
			for _, v := range violations {
				t.Errorf("[%s] %s", name, v)
			}
		}
	}

	// Only main packages (cmd/..., e2e/...) write to the terminal; library
	// code reports through callbacks and events.
	var found []string
	for _, p := range hostPkgs {
		if p.Module == nil || !p.Module.Main || p.Name == "main" ||
			archUnder(p.ImportPath, mod+"/e2e") || archUnder(p.ImportPath, mod+"/cmd") {
			continue
		}
		for _, name := range slices.Concat(p.GoFiles, p.CgoFiles, p.IgnoredGoFiles) {
			if strings.HasSuffix(name, "_test.go") || !strings.HasSuffix(name, ".go") {
				continue
			}
			path := filepath.Join(p.Dir, name)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s: %v", archShort(mod, p.ImportPath), err)
				continue
			}
			rel, _ := filepath.Rel(root, path)
			hits, err := archScanFile(rel, src)
			if err != nil {
				t.Errorf("%s: cannot parse, so cannot check that it does not print: %v", rel, err)
			}
			found = append(found, hits...)
		}
	}
	if len(found) > 0 {
		slices.Sort(found)
		t.Errorf("library code writes to the terminal; only cmd/dshare may print, libraries report through callbacks or events:\n\t%s",
			strings.Join(found, "\n\t"))
	}
}

// TestArchitectureRules shows that the checks can fail: fake import graphs
// and sources that break each rule must be caught, and clean ones not.
func TestArchitectureRules(t *testing.T) {
	const mod = "example.com/m"
	std := func(paths ...string) []*archPkg {
		var ps []*archPkg
		for _, p := range paths {
			ps = append(ps, &archPkg{ImportPath: p, Standard: true})
		}
		return ps
	}
	pkg := func(path string, imports ...string) *archPkg {
		return &archPkg{ImportPath: path, Imports: imports}
	}
	graph := func(ps ...*archPkg) map[string]*archPkg {
		m := map[string]*archPkg{}
		for _, p := range ps {
			m[p.ImportPath] = p
		}
		return m
	}
	base := append(std("fmt", "io", "vendor/golang.org/x/crypto/chacha20"),
		pkg("github.com/fxamacker/cbor/v2", "io", "github.com/x448/float16"),
		pkg("github.com/x448/float16"),
		pkg("lukechampine.com/blake3", "lukechampine.com/blake3/guts"),
		pkg("lukechampine.com/blake3/guts", "github.com/klauspost/cpuid/v2"),
		pkg("github.com/klauspost/cpuid/v2"),
		pkg("github.com/multiformats/go-multiaddr", "fmt"),
		pkg("github.com/libp2p/go-libp2p/core/peer", "github.com/multiformats/go-multiaddr"),
		pkg("github.com/evil/logger", "github.com/libp2p/go-libp2p/core/peer"),
		pkg("golang.org/x/sys/unix"),
		pkg("golang.org/x/sysfoo"),
		pkg(mod+"/chunker", "io", "lukechampine.com/blake3"),
		pkg(mod+"/peer", mod+"/wire", "github.com/libp2p/go-libp2p/core/peer"),
	)
	rule := func(name string) archRule {
		for _, r := range archRules(mod) {
			if r.pkg == name {
				return r
			}
		}
		t.Fatalf("no rule for %s", name)
		return archRule{}
	}

	deps := []struct {
		name string
		rule string
		pkgs []*archPkg
		want []string // substrings, one per expected violation, in order
	}{
		{"wire clean", "wire", []*archPkg{
			pkg(mod+"/wire", "fmt", "github.com/fxamacker/cbor/v2", "vendor/golang.org/x/crypto/chacha20"),
		}, nil},
		{"wire imports multiaddr", "wire", []*archPkg{
			pkg(mod+"/wire", "fmt", "github.com/fxamacker/cbor/v2", "github.com/multiformats/go-multiaddr"),
		}, []string{
			"wire imports github.com/multiformats/go-multiaddr (wire → github.com/multiformats/go-multiaddr), which the allow-list does not cover",
			"wire imports github.com/multiformats/go-multiaddr (wire → github.com/multiformats/go-multiaddr), which is forbidden.\n\trule: wire, chunker, peer/store, peer/source and peer/engine never reach the network stack (multiformats)",
		}},
		{"wire reaches libp2p through another module", "wire", []*archPkg{
			pkg(mod+"/wire", "github.com/fxamacker/cbor/v2", "github.com/evil/logger"),
		}, []string{
			"wire imports github.com/evil/logger (wire → github.com/evil/logger), which the allow-list does not cover",
			"github.com/evil/logger imports github.com/libp2p/go-libp2p/core/peer (wire → github.com/evil/logger → github.com/libp2p/go-libp2p/core/peer), which is forbidden",
			"core/peer imports github.com/multiformats/go-multiaddr (wire → github.com/evil/logger → github.com/libp2p/go-libp2p/core/peer → github.com/multiformats/go-multiaddr), which is forbidden",
		}},
		{"wire imports chunker", "wire", []*archPkg{
			pkg(mod+"/wire", mod+"/chunker"),
		}, []string{"wire imports example.com/m/chunker (wire → chunker), which the allow-list does not cover"}},
		{"chunker clean", "chunker", nil, nil},
		{"chunker imports wire", "chunker", []*archPkg{
			pkg(mod+"/chunker", "lukechampine.com/blake3", mod+"/wire"),
			pkg(mod+"/wire", "github.com/fxamacker/cbor/v2"),
		}, []string{"chunker imports example.com/m/wire (chunker → wire)"}},
		{"store clean", "peer/store", []*archPkg{
			pkg(mod+"/peer/store", "golang.org/x/sys/unix", mod+"/wire", mod+"/chunker", mod+"/peer/store/internal/fd"),
			pkg(mod+"/peer/store/internal/fd", "io"),
			pkg(mod+"/wire", "github.com/fxamacker/cbor/v2"),
		}, nil},
		{"store prefix is not a path prefix", "peer/store", []*archPkg{
			pkg(mod+"/peer/store", "golang.org/x/sysfoo"),
		}, []string{"peer/store imports golang.org/x/sysfoo"}},
		{"store imports peer", "peer/store", []*archPkg{
			pkg(mod+"/peer/store", mod+"/peer"),
		}, []string{
			"peer/store imports example.com/m/peer (peer/store → peer), which the allow-list does not cover",
			"peer imports github.com/libp2p/go-libp2p/core/peer (peer/store → peer → github.com/libp2p/go-libp2p/core/peer), which is forbidden",
			"core/peer imports github.com/multiformats/go-multiaddr (peer/store → peer → github.com/libp2p/go-libp2p/core/peer → github.com/multiformats/go-multiaddr), which is forbidden",
			"peer/store imports example.com/m/peer (peer/store → peer), which is forbidden.\n\trule: peer/store sits below the protocol engine",
		}},
		{"engine clean", "peer/engine", []*archPkg{
			pkg(mod+"/peer/engine", mod+"/peer/store", mod+"/peer/source", mod+"/wire", "golang.org/x/text/cases"),
			pkg(mod+"/peer/store", mod+"/wire", mod+"/chunker"),
			pkg(mod+"/peer/source", mod+"/wire"),
			pkg(mod+"/wire", "github.com/fxamacker/cbor/v2"),
			pkg("golang.org/x/text/cases"),
		}, nil},
		{"engine imports libp2p", "peer/engine", []*archPkg{
			pkg(mod+"/peer/engine", "github.com/libp2p/go-libp2p/core/peer"),
		}, []string{
			"peer/engine imports github.com/libp2p/go-libp2p/core/peer (peer/engine → github.com/libp2p/go-libp2p/core/peer), which the allow-list does not cover",
			"peer/engine imports github.com/libp2p/go-libp2p/core/peer (peer/engine → github.com/libp2p/go-libp2p/core/peer), which is forbidden",
			"core/peer imports github.com/multiformats/go-multiaddr (peer/engine → github.com/libp2p/go-libp2p/core/peer → github.com/multiformats/go-multiaddr), which is forbidden",
		}},
		{"engine imports the front", "peer/engine", []*archPkg{
			pkg(mod+"/peer/engine", mod+"/peer"),
			pkg(mod + "/peer"),
		}, []string{"peer/engine imports example.com/m/peer (peer/engine → peer), which the allow-list does not cover"}},
		{"discovery clean", "discovery", []*archPkg{
			pkg(mod+"/discovery", "github.com/libp2p/go-libp2p/core/peer"),
		}, nil},
		{"discovery imports peer", "discovery", []*archPkg{
			pkg(mod+"/discovery", "github.com/libp2p/go-libp2p/core/peer", mod+"/peer/store"),
			pkg(mod+"/peer/store", mod+"/peer"),
		}, []string{"discovery: discovery imports example.com/m/peer/store (discovery → peer/store), which is forbidden.\n\trule: discovery never imports dshare/peer"}},
		{"discovery imports the CLI", "discovery", []*archPkg{
			pkg(mod+"/discovery", mod+"/cmd/dshare"),
		}, []string{"discovery imports example.com/m/cmd/dshare (discovery → cmd/dshare), which is forbidden.\n\trule: discovery never imports the CLI"}},
	}
	for _, tc := range deps {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := archCheckDeps(mod, graph(append(slices.Clone(base), tc.pkgs...)...), rule(tc.rule))
			if !ok {
				t.Fatalf("package %s not found", tc.rule)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %d:\n%s\nwant it to contain:\n%s", i, got[i], w)
				}
			}
		})
	}
	if _, ok := archCheckDeps(mod, graph(base...), rule("peer/store")); ok {
		t.Error("a missing package was reported as checked")
	}

	srcs := []struct {
		name string
		src  string
		want []string
	}{
		{"clean", `package p
import ("fmt"; "io"; "os")
// Never fmt.Println or os.Stderr here.
func f(w io.Writer) { fmt.Fprintf(w, "os.Stdout %d", 1); _ = fmt.Sprint(1); _ = os.Getenv("X") }`, nil},
		{"fmt.Println", "package p\nimport \"fmt\"\nfunc f() {\n\tfmt.Println(1)\n}\n", []string{"p.go:4: fmt.Println"}},
		{"os.Stderr", "package p\nimport (\"fmt\"; \"os\")\nfunc f() { fmt.Fprintln(os.Stderr, 1) }\n", []string{"p.go:3: os.Stderr"}},
		{"renamed log", "package p\nimport l \"log\"\nfunc f() { l.Printf(\"x\") }\nfunc g() { l.Fatal(1) }\n",
			[]string{"p.go:3: log.Printf", "p.go:4: log.Fatal"}},
		{"builtins", "package p\nfunc f() {\n\tprintln(1)\n\tprint(2)\n}\n", []string{"p.go:3: println(", "p.go:4: print("}},
		{"dot import", "package p\nimport . \"fmt\"\nfunc f() { Println(1) }\n", []string{"p.go:2: dot-import of fmt"}},
		{"shadowed", "package p\nimport \"os\"\nfunc print(x int) {}\nfunc f(os struct{ Stdout int }) { print(os.Stdout) }\n", nil},
		{"shadowed elsewhere", "package p\nimport \"os\"\nfunc f(os struct{ Stdout int }) int { return os.Stdout }\nfunc g() { _ = os.Stderr }\n", []string{"p.go:4: os.Stderr"}},
		{"main", "package main\nimport \"fmt\"\nfunc main() { fmt.Println(1) }\n", nil},
	}
	for _, tc := range srcs {
		t.Run("print/"+tc.name, func(t *testing.T) {
			got, err := archScanFile("p.go", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("got %q, want it to start with %q", got[i], w)
				}
			}
		})
	}
}
