package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchSmoke runs the benchmark program at its smoke sizes, so that
// every scenario, both tools and the link emulator work end to end in CI.
// It checks that the program runs and measures real transfers, never how
// fast they are: benchmarks are not timed tests.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("the benchmark smoke run takes about 10 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("dshare-bench"), "--smoke", "--dshare", bin("dshare"))
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dshare-bench --smoke: %v (context: %v)\n%s\n%s", err, ctx.Err(), stdout.String(), stderr.String())
	}

	// A table starts with "== NAME: what ==", and each tool's row with
	// its name and its MB/s.
	mbps := map[string]map[string]float64{}
	scenario := ""
	for _, line := range strings.Split(stdout.String(), "\n") {
		if head, ok := strings.CutPrefix(line, "== "); ok {
			scenario, _, _ = strings.Cut(head, ":")
			mbps[scenario] = map[string]float64{}
			continue
		}
		f := strings.Fields(line)
		if scenario == "" || len(f) < 2 || (f[0] != "dshare" && f[0] != "raw-quic") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			mbps[scenario][f[0]] = v
		}
	}
	for _, sc := range []string{"loopback", "wan-clean", "wan-loss-0.5", "wan-loss-1", "files-4k", "files-64k"} {
		rows, ok := mbps[sc]
		if !ok {
			t.Errorf("no table for scenario %s", sc)
			continue
		}
		for _, tool := range []string{"dshare", "raw-quic"} {
			if rows[tool] <= 0 {
				t.Errorf("%s: no MB/s above zero for %s", sc, tool)
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s\n%s", stdout.String(), stderr.String())
	}
}
