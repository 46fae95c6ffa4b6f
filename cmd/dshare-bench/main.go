// Command dshare-bench measures the real dshare binary: it runs dshare
// send and dshare recv as separate processes on loopback (127.0.0.1
// only, always --offline), through its own link emulator for the WAN
// scenarios, against a raw go-libp2p QUIC stream measured in the same
// run, and prints one table per scenario. docs/BENCHMARKS.md says what
// each scenario measures and holds results.
//
//	dshare-bench [--smoke] [--scenarios loopback,wan-clean,...] [--rounds N] ...
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// processStart is as close to the start of the process as the raw
// baseline can see, to time its first byte as dshare does.
var processStart = time.Now()

// errUsage marks a mistake in the command line (exit code 2).
var errUsage = errors.New("usage")

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	var err error
	switch mode {
	case "raw-listen": // hidden: the baseline's receiving process
		err = rawListen(os.Args[2:])
	case "raw-send": // hidden: the baseline's sending process
		err = rawSend(os.Args[2:], processStart)
	case "link": // the link emulator alone, for tests
		err = linkMain(os.Args[2:], os.Stdin, os.Stdout)
	case "fairness": // dshare beside a TCP flow, in namespaces (root)
		err = fairnessMain(os.Args[2:], os.Stdout, os.Stderr)
	case "tcp-sink": // hidden: the fairness scenario's TCP receiver
		err = tcpSinkMain(os.Args[2:], os.Stdout)
	case "tcp-source": // hidden: the fairness scenario's TCP sender
		err = tcpSourceMain(os.Args[2:], os.Stdout)
	default:
		err = run(os.Args[1:], os.Stdout, os.Stderr)
	}
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "dshare-bench:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	dshare    string
	scenarios []string
	size      int64
	sizeWAN   int64
	rounds    int
	seed      uint64
	smoke     bool
	json      bool
	timeout   time.Duration
	wanRate   float64 // bits per second
	wanRTT    time.Duration
	files4k   int
	files64k  int
	sendArgs  []string // extra flags for every dshare send
}

// listFlag is a repeatable string flag.
type listFlag struct{ list *[]string }

func (f listFlag) String() string {
	if f.list == nil {
		return ""
	}
	return strings.Join(*f.list, " ")
}

func (f listFlag) Set(s string) error { *f.list = append(*f.list, s); return nil }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{
		size: 1 << 30, sizeWAN: 256 << 20, rounds: 1, seed: 1, timeout: 30 * time.Minute,
		wanRate: 200e6, wanRTT: 40 * time.Millisecond, files4k: 10000, files64k: 1000,
	}
	var names string
	fs := flag.NewFlagSet("dshare-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.dshare, "dshare", "", "the dshare binary (default: dshare next to this program, else on PATH)")
	fs.StringVar(&names, "scenarios", "", "comma-separated scenarios to run (default all: "+strings.Join(scenarioNames(cfg), ",")+")")
	fs.Var(sizeFlag{&cfg.size}, "size", "the file of the loopback scenario (e.g. 512M, 1GiB)")
	fs.Var(sizeFlag{&cfg.sizeWAN}, "size-wan", "the file of the WAN scenarios")
	fs.IntVar(&cfg.rounds, "rounds", cfg.rounds, "rounds per scenario; each round runs every tool once")
	fs.Uint64Var(&cfg.seed, "seed", cfg.seed, "seed of the test data and of the emulator's losses")
	fs.BoolVar(&cfg.smoke, "smoke", false, "a quick run of every scenario with tiny sizes (8 MiB, 4 MiB at 10 ms RTT, 200 files)")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON on stdout (the tables go to stderr)")
	fs.DurationVar(&cfg.timeout, "timeout", cfg.timeout, "longest a single transfer may take")
	fs.Var(listFlag{&cfg.sendArgs}, "send-arg", "pass `ARG` to every dshare send, e.g. --send-arg=--lanes=4 (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: dshare-bench [flags]\n\nRuns dshare send and recv on loopback against a raw go-libp2p QUIC stream and prints a table per scenario.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dshare-bench: unexpected argument %q\n", fs.Arg(0))
		return cfg, errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.smoke {
		// Tiny sizes, unless given: the point is that every path runs.
		if !set["size"] {
			cfg.size = 8 << 20
		}
		if !set["size-wan"] {
			cfg.sizeWAN = 4 << 20
		}
		cfg.wanRTT = 10 * time.Millisecond
		cfg.files4k, cfg.files64k = 200, 200
		if !set["timeout"] {
			cfg.timeout = time.Minute
		}
	}
	if cfg.rounds < 1 || cfg.rounds > 100 {
		fmt.Fprintln(stderr, "dshare-bench: --rounds must be between 1 and 100")
		return cfg, errUsage
	}
	if cfg.timeout <= 0 {
		fmt.Fprintln(stderr, "dshare-bench: --timeout must be positive")
		return cfg, errUsage
	}
	all := scenarioNames(cfg)
	if names == "" {
		cfg.scenarios = all
	} else {
		for _, n := range strings.Split(names, ",") {
			n = strings.TrimSpace(n)
			if !slices.Contains(all, n) {
				fmt.Fprintf(stderr, "dshare-bench: no scenario %q; there are %s\n", n, strings.Join(all, ", "))
				return cfg, errUsage
			}
			if !slices.Contains(cfg.scenarios, n) {
				cfg.scenarios = append(cfg.scenarios, n)
			}
		}
	}
	return cfg, nil
}

func scenarioNames(cfg config) []string {
	var names []string
	for _, s := range scenarios(cfg) {
		names = append(names, s.Name)
	}
	return names
}

// findDshare picks the binary to measure: the one asked for, else the one
// built next to this program, else the one on PATH.
func findDshare(asked, self string) (string, error) {
	if asked != "" {
		p, err := exec.LookPath(asked)
		if err != nil {
			return "", fmt.Errorf("no dshare binary at %s", asked)
		}
		return filepath.Abs(p)
	}
	if p := filepath.Join(filepath.Dir(self), "dshare"); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("dshare"); err == nil {
		return filepath.Abs(p)
	}
	return "", errors.New("found no dshare binary next to dshare-bench or on PATH; build one and pass --dshare PATH")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// report is the whole run, as --json prints it.
type report struct {
	Date      string           `json:"date"`
	Machine   machine          `json:"machine"`
	Seed      uint64           `json:"seed"`
	Rounds    int              `json:"rounds"`
	Smoke     bool             `json:"smoke"`
	SendArgs  []string         `json:"send_args,omitempty"`
	Seconds   float64          `json:"seconds"`
	Scenarios []scenarioReport `json:"scenarios"`
}

type scenarioReport struct {
	scenario
	LinkMBps float64   `json:"link_mb_per_s,omitempty"`
	Seed     uint64    `json:"seed"` // of the emulator's losses
	Runs     []result  `json:"runs"`
	Summary  []summary `json:"summary"`
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find this program's own binary for the raw baseline: %w", err)
	}
	if cfg.dshare, err = findDshare(cfg.dshare, self); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "dshare-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	tables := stdout
	if cfg.json {
		tables = stderr
	}
	t0 := time.Now()
	rep := report{Date: t0.UTC().Format("2006-01-02 15:04 UTC"), Machine: readMachine(cfg.dshare),
		Seed: cfg.seed, Rounds: cfg.rounds, Smoke: cfg.smoke, SendArgs: cfg.sendArgs}
	printMachine(tables, rep)
	b := &bench{ctx: ctx, cfg: cfg, self: self, tmp: tmp, log: stderr, data: map[string]*dataset{}}
	for _, sc := range scenarios(cfg) {
		if !slices.Contains(cfg.scenarios, sc.Name) {
			continue
		}
		results, err := b.runScenario(sc)
		if err != nil {
			return err
		}
		sr := scenarioReport{scenario: sc, LinkMBps: sc.linkMBps(), Seed: cfg.seed, Runs: results, Summary: summarize(sc, results)}
		rep.Scenarios = append(rep.Scenarios, sr)
		printTable(tables, sr)
	}
	rep.Seconds = time.Since(t0).Seconds()
	fmt.Fprintf(stderr, "dshare-bench: done in %.1fs\n", rep.Seconds)
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return nil
}
