package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
)

// machine says where the numbers were measured.
type machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Memory string `json:"memory"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`     // of this bench
	Dshare string `json:"dshare"` // the binary measured: path, Go version, commit
}

func readMachine(dshare string) machine {
	m := machine{CPU: "unknown CPU", Cores: runtime.NumCPU(), Memory: "unknown",
		Kernel: runtime.GOOS, Go: runtime.Version(), Dshare: dshare}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		var kb int64
		if _, err := fmt.Sscanf(v, "%d kB", &kb); err == nil {
			m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if bi, err := buildinfo.ReadFile(dshare); err == nil {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && len(s.Value) >= 12:
				rev = " commit " + s.Value[:12]
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = " (modified)"
			}
		}
		m.Dshare = fmt.Sprintf("%s, built with %s%s%s", dshare, bi.GoVersion, rev, dirty)
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file, or "" where there is none.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func printMachine(w io.Writer, r report) {
	m := r.Machine
	fmt.Fprintf(w, "dshare-bench, %s\n", r.Date)
	fmt.Fprintf(w, "machine: %s, %d cores, %s RAM, %s, %s\n", m.CPU, m.Cores, m.Memory, m.Kernel, m.Go)
	fmt.Fprintf(w, "dshare:  %s\n", m.Dshare)
	smoke := ""
	if r.Smoke {
		smoke = ", smoke sizes"
	}
	fmt.Fprintf(w, "seed %d, %d round(s)%s; MB = 10^6 bytes\n", r.Seed, r.Rounds, smoke)
	if len(r.SendArgs) > 0 {
		fmt.Fprintf(w, "dshare send also given: %s\n", strings.Join(r.SendArgs, " "))
	}
}

// summary is one tool's line in a scenario's table: medians over the
// rounds, peaks for memory.
type summary struct {
	Tool        string     `json:"tool"`
	Rounds      int        `json:"rounds"`
	MBps        float64    `json:"mb_per_s"`
	MinMBps     float64    `json:"min_mb_per_s"`
	MaxMBps     float64    `json:"max_mb_per_s"`
	FilesPerSec float64    `json:"files_per_s,omitempty"`
	VsRaw       float64    `json:"vs_raw"`            // MB/s over the raw baseline's
	VsLink      float64    `json:"vs_link,omitempty"` // MB/s over the emulated link's rate
	FirstByte   float64    `json:"first_byte"`
	Seconds     float64    `json:"seconds"`
	Wall        float64    `json:"wall_seconds"`
	RSSSend     int64      `json:"peak_rss_send"`
	RSSRecv     int64      `json:"peak_rss_recv"`
	Up          *linkStats `json:"link_up,omitempty"` // summed over the rounds
	Down        *linkStats `json:"link_down,omitempty"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func addStats(sum **linkStats, s *linkStats) {
	if s == nil {
		return
	}
	if *sum == nil {
		*sum = &linkStats{}
	}
	(*sum).Forwarded += s.Forwarded
	(*sum).Lost += s.Lost
	(*sum).QueueDrops += s.QueueDrops
	(*sum).Bytes += s.Bytes
}

// summarize folds the rounds of each tool into one line, dshare first.
func summarize(sc scenario, results []result) []summary {
	var out []summary
	for _, tool := range []string{toolDshare, toolRaw} {
		var mbps, fps, first, secs, wall []float64
		s := summary{Tool: tool}
		for _, r := range results {
			if r.Tool != tool {
				continue
			}
			s.Rounds++
			mbps = append(mbps, r.MBps)
			fps = append(fps, r.FilesPerSec)
			first = append(first, r.FirstByte)
			secs = append(secs, r.Seconds)
			wall = append(wall, r.Wall)
			s.RSSSend, s.RSSRecv = max(s.RSSSend, r.RSSSend), max(s.RSSRecv, r.RSSRecv)
			addStats(&s.Up, r.Up)
			addStats(&s.Down, r.Down)
		}
		if s.Rounds == 0 {
			continue
		}
		s.MBps, s.MinMBps, s.MaxMBps = median(mbps), slices.Min(mbps), slices.Max(mbps)
		s.FilesPerSec, s.FirstByte, s.Seconds, s.Wall = median(fps), median(first), median(secs), median(wall)
		if l := sc.linkMBps(); l > 0 {
			s.VsLink = s.MBps / l
		}
		out = append(out, s)
	}
	var raw float64
	for _, s := range out {
		if s.Tool == toolRaw {
			raw = s.MBps
		}
	}
	for i := range out {
		if raw > 0 {
			out[i].VsRaw = out[i].MBps / raw
		}
	}
	return out
}

// printTable prints one scenario. Rows start with the tool's name and
// the MB/s, which the e2e smoke test reads.
func printTable(w io.Writer, sr scenarioReport) {
	fmt.Fprintf(w, "\n== %s: %s ==\n", sr.Name, sr.About)
	multi := false
	for _, s := range sr.Summary {
		multi = multi || s.Rounds > 1
	}
	head := fmt.Sprintf("%-9s %9s %8s %7s %8s %11s %9s %8s %9s %9s",
		"tool", "MB/s", "files/s", "vs raw", "vs link", "first byte", "transfer", "wall", "RSS send", "RSS recv")
	if multi {
		head += fmt.Sprintf(" %17s", "MB/s min-max")
	}
	fmt.Fprintln(w, head)
	for _, s := range sr.Summary {
		dash := func(v float64, format string) string {
			if v <= 0 {
				return "-"
			}
			return fmt.Sprintf(format, v)
		}
		fps := "-"
		if sr.Files > 1 && s.Tool == toolDshare {
			fps = dash(s.FilesPerSec, "%.0f")
		}
		line := fmt.Sprintf("%-9s %9.2f %8s %7s %8s %11s %9s %8s %9s %9s",
			s.Tool, s.MBps, fps, dash(s.VsRaw, "%.2f"), dash(s.VsLink, "%.2f"),
			dash(s.FirstByte, "%.3fs"), dash(s.Seconds, "%.2fs"), dash(s.Wall, "%.2fs"),
			mib(s.RSSSend), mib(s.RSSRecv))
		if multi {
			line += fmt.Sprintf(" %17s", fmt.Sprintf("%.1f-%.1f", s.MinMBps, s.MaxMBps))
		}
		fmt.Fprintln(w, line)
	}
	if sr.Link != nil {
		fmt.Fprintf(w, "link %.0f MB/s; emulator (seed %d), summed over the rounds:\n", sr.LinkMBps, sr.Seed)
		for _, s := range sr.Summary {
			if s.Up != nil && s.Down != nil {
				fmt.Fprintf(w, "  %-9s up: %s; down: %s\n", s.Tool, s.Up, s.Down)
			}
		}
	}
}

func mib(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprintf("%d MiB", (n+(1<<19))>>20)
}
