package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dshare/dshare/peer"
)

const mib = 1 << 20

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testBars draws into buf on a terminal cols wide, on a fake clock.
func testBars(buf *bytes.Buffer, total, already uint64, cols int) (*bars, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := newBars(buf, total, already)
	b.now = clk.now
	b.width = func() int { return cols }
	b.height = func() int { return 0 }
	return b, clk
}

// screen replays what bars writes on a model of a terminal cols wide:
// enough of a VT100 (with the tty's \n to \r\n) to see what is left on
// the screen and where the cursor is. A rune written in the last column
// counts as a wrap: bars must never go there.
type screen struct {
	cols     int
	rows     [][]rune
	r, c     int
	wrapped  []string
	unknowns []string
}

var csi = regexp.MustCompile(`^\x1b\[([0-9;]*)([A-Za-z])`)

func replay(out string, cols int) *screen {
	s := &screen{cols: cols, rows: [][]rune{nil}}
	for len(out) > 0 {
		if m := csi.FindStringSubmatch(out); m != nil {
			out = out[len(m[0]):]
			n, _ := strconv.Atoi(m[1])
			switch m[2] {
			case "A":
				s.r = max(s.r-max(n, 1), 0)
			case "K":
				if n != 2 {
					s.unknowns = append(s.unknowns, m[0])
				}
				s.rows[s.r] = nil
			case "J":
				if n != 0 {
					s.unknowns = append(s.unknowns, m[0])
				}
				s.rows[s.r] = s.rows[s.r][:min(s.c, len(s.rows[s.r]))]
				s.rows = s.rows[:s.r+1]
			default:
				s.unknowns = append(s.unknowns, m[0])
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(out)
		out = out[size:]
		switch r {
		case '\r':
			s.c = 0
		case '\n':
			s.r, s.c = s.r+1, 0
			for len(s.rows) <= s.r {
				s.rows = append(s.rows, nil)
			}
		default:
			w := runeCols(r)
			if s.c+w > s.cols-1 {
				s.wrapped = append(s.wrapped, string(s.rows[s.r])+string(r))
				s.r, s.c = s.r+1, 0
				for len(s.rows) <= s.r {
					s.rows = append(s.rows, nil)
				}
			}
			row := s.rows[s.r]
			for len(row) < s.c {
				row = append(row, ' ')
			}
			if s.c < len(row) {
				row[s.c] = r
			} else {
				row = append(row, r)
			}
			if w == 2 {
				row = append(row[:s.c+1], 0) // the wide rune's second column
			}
			s.rows[s.r] = row
			s.c += w
		}
	}
	return s
}

// lines is the screen's text, rows trimmed, trailing empty rows left out.
func (s *screen) lines() []string {
	var out []string
	for _, r := range s.rows {
		out = append(out, strings.TrimRight(strings.ReplaceAll(string(r), "\x00", ""), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func (s *screen) check(t *testing.T) {
	t.Helper()
	if len(s.wrapped) > 0 {
		t.Errorf("lines reach the last of %d columns: %q", s.cols, s.wrapped)
	}
	if len(s.unknowns) > 0 {
		t.Errorf("unexpected escape sequences: %q", s.unknowns)
	}
}

var rateRE = regexp.MustCompile(`([0-9.]+) (B|KiB|MiB|GiB|TiB)/s`)

// rateOf is the rate on line in MiB/s; ok is false if there is none.
func rateOf(line string) (float64, bool) {
	m := rateRE.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	unit := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	return v * unit / mib, true
}

// totalLine is the last total line on the screen.
func totalLine(t *testing.T, s *screen) string {
	t.Helper()
	ls := s.lines()
	for i := len(ls) - 1; i >= 0; i-- {
		if strings.HasPrefix(ls[i], "total") {
			return ls[i]
		}
	}
	t.Fatalf("no total line on the screen:\n%s", strings.Join(ls, "\n"))
	return ""
}

// feed updates b every step from the clock's time on, for d, growing the
// confirmed bytes from start at rate bytes a second; it returns the bytes.
func feed(b *bars, clk *fakeClock, start uint64, rate float64, step, d time.Duration, total uint64) uint64 {
	n := start
	for elapsed := time.Duration(0); elapsed < d; elapsed += step {
		clk.advance(step)
		n += uint64(rate * step.Seconds())
		b.update(peer.Progress{Confirmed: n, Total: total})
	}
	return n
}

func TestBarsNoRateBeforeOneSecond(t *testing.T) {
	var buf bytes.Buffer
	b, clk := testBars(&buf, 1<<30, 0, 100)
	b.update(peer.Progress{Total: 1 << 30})
	// A burst: 8 MiB confirmed 10 ms in, then more within the first second.
	clk.advance(10 * time.Millisecond)
	b.update(peer.Progress{Confirmed: 8 * mib, Total: 1 << 30})
	feed(b, clk, 8*mib, 10*mib, 100*time.Millisecond, 800*time.Millisecond, 1<<30)
	out := buf.String()
	if m := rateRE.FindString(out); m != "" {
		t.Errorf("a rate (%s) before a second of data:\n%q", m, out)
	}
	if strings.Contains(out, "ETA") {
		t.Errorf("an ETA before a second of data:\n%q", out)
	}
	s := replay(out, 100)
	s.check(t)
	if line := totalLine(t, s); !strings.Contains(line, "--- /s") {
		t.Errorf("total line %q does not say the rate is not known yet", line)
	}
}

func TestBarsSteadyRate(t *testing.T) {
	var buf bytes.Buffer
	const total = 100 * mib
	b, clk := testBars(&buf, total, 0, 100)
	b.update(peer.Progress{Total: total})
	done := feed(b, clk, 0, 10*mib, time.Second, 5*time.Second, total)
	s := replay(buf.String(), 100)
	s.check(t)
	line := totalLine(t, s)
	r, ok := rateOf(line)
	if !ok || r < 9 || r > 11 {
		t.Fatalf("10 MiB a second for 5 s shows %q, want 9 to 11 MiB/s", line)
	}
	m := regexp.MustCompile(`ETA (\d+)s\b`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no labelled ETA in %q", line)
	}
	if eta, _ := strconv.Atoi(m[1]); eta < 4 || eta > 6 {
		t.Errorf("%d MiB left at 10 MiB/s: ETA %ds in %q", (total-done)/mib, eta, line)
	}
}

func TestBarsRateFollowsChange(t *testing.T) {
	var buf bytes.Buffer
	const total = 1 << 40
	b, clk := testBars(&buf, total, 0, 100)
	b.update(peer.Progress{Total: total})
	n := feed(b, clk, 0, 100*mib, 100*time.Millisecond, 10*time.Second, total)
	feed(b, clk, n, 10*mib, 100*time.Millisecond, 15*time.Second, total)
	line := totalLine(t, replay(buf.String(), 100))
	if r, ok := rateOf(line); !ok || r < 9 || r > 12 {
		t.Errorf("15 s at 10 MiB/s after 10 s at 100 MiB/s shows %q, want about 10 MiB/s", line)
	}
}

func TestBarsShowsBytesAndETA(t *testing.T) {
	var buf bytes.Buffer
	const total = 274 * mib
	b, clk := testBars(&buf, total, 0, 100)
	b.update(peer.Progress{Total: total})
	feed(b, clk, 0, 20*mib, 100*time.Millisecond, 3*time.Second, total) // 60 MiB
	line := totalLine(t, replay(buf.String(), 100))
	for _, want := range []string{"60.0 MiB / 274.0 MiB", " 21%", "20.0 MiB/s", "ETA 11s", "["} {
		if !strings.Contains(line, want) {
			t.Errorf("total line %q lacks %q", line, want)
		}
	}
	if strings.Contains(buf.String(), "[3s") {
		t.Errorf("unlabelled time in %q", line)
	}
}

func TestProgressETAFormat(t *testing.T) {
	for _, tc := range []struct {
		rest, rate float64
		want       string
	}{
		{40, 10, "4s"},
		{192, 1, "3m12s"},
		{3900, 1, "1h05m"},
		{1, 0, "--"},
		{0, 5, "0s"},
	} {
		if got := formatETA(tc.rest, tc.rate); got != tc.want {
			t.Errorf("formatETA(%v, %v) = %q, want %q", tc.rest, tc.rate, got, tc.want)
		}
	}
}

func TestBarsResumeNotInRate(t *testing.T) {
	const total, already = 100 * mib, 90 * mib
	for _, tc := range []struct {
		name    string
		already uint64 // as the caller knows it
		first   time.Duration
	}{
		{"reported at once", already, 0},
		{"first report late", already, 500 * time.Millisecond},
		{"caller did not know", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			b, clk := testBars(&buf, total, tc.already, 100)
			clk.advance(tc.first)
			b.update(peer.Progress{Confirmed: already, Total: total})
			feed(b, clk, already, 1*mib, 125*time.Millisecond, 5*time.Second, total)
			s := replay(buf.String(), 100)
			s.check(t)
			line := totalLine(t, s)
			if r, ok := rateOf(line); !ok || r < 0.9 || r > 1.1 {
				t.Errorf("1 MiB/s on top of 90 MiB already there shows %q", line)
			}
			for _, want := range []string{" 95%", "95.0 MiB / 100.0 MiB", "ETA 5s"} {
				if !strings.Contains(line, want) {
					t.Errorf("total line %q lacks %q", line, want)
				}
			}
			if m := rateRE.FindAllString(buf.String(), -1); len(m) > 0 {
				for _, r := range m {
					if v, _ := rateOf(r); v > 2 {
						t.Errorf("some frame shows %s for 1 MiB/s", r)
					}
				}
			}
			resumed := strings.Contains(s.lines()[0], "Resuming: 90.0 MiB of 100.0 MiB")
			if resumed != (tc.already > 0) {
				t.Errorf("resume line shown %v, want %v: %q", resumed, tc.already > 0, s.lines())
			}
			if tc.already > 0 && !strings.Contains(line, "[++++") {
				t.Errorf("the bar %q does not tell the bytes already there from the new", line)
			}
		})
	}
}

// busy gives b three files in flight with long names, a wide one among them.
func busy(b *bars, clk *fakeClock, total uint64) {
	files := []peer.FileProgress{
		{Index: 0, Path: "photos/2025/holiday/a-very-long-directory-name/IMG_0001.jpeg", Size: 40 * mib, Confirmed: 3 * mib},
		{Index: 1, Path: "文档/报告/季度总结二〇二五年第三季度最终版本.pdf", Size: 2 * mib, Confirmed: mib},
		{Index: 2, Path: "x.bin", Size: 1 << 30, Confirmed: 1 << 29},
	}
	var n uint64
	for i := range 30 {
		clk.advance(100 * time.Millisecond)
		n += mib
		for j := range files {
			files[j].Confirmed = min(files[j].Confirmed+mib/4, files[j].Size-1)
		}
		b.update(peer.Progress{Confirmed: n + uint64(i), Total: total, Files: files})
	}
}

func TestBarsNarrowTerminalNoWrap(t *testing.T) {
	for _, cols := range []int{50, 80, 39, 20} {
		t.Run(fmt.Sprint(cols), func(t *testing.T) {
			var buf bytes.Buffer
			b, clk := testBars(&buf, 2<<30, 0, cols)
			busy(b, clk, 2<<30)
			b.finish()
			out := buf.String()
			// Every piece of text between line breaks and escapes fits.
			for _, l := range regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]|\r|\n`).Split(out, -1) {
				if c := textCols(l); c > cols-1 {
					t.Errorf("%d columns in %d: %q", c, cols, l)
				}
			}
			s := replay(out, cols)
			s.check(t)
			ls := s.lines()
			if cols >= 40 {
				if len(ls) != 4 {
					t.Fatalf("want 3 file lines and the total, got %q", ls)
				}
				if !strings.Contains(ls[3], "[") || !strings.Contains(ls[3], "%") {
					t.Errorf("total line %q lacks the bar or percent", ls[3])
				}
				return
			}
			if len(ls) != 1 || strings.Contains(ls[0], "[") || !strings.Contains(ls[0], "%") {
				t.Errorf("in %d columns want one line of numbers, got %q", cols, ls)
			}
		})
	}
}

func TestBarsRedrawLeavesNoStaleLines(t *testing.T) {
	var buf bytes.Buffer
	buf.WriteString("Sending 3 files (2.0 GiB)...\n")
	cols := 50
	b, clk := testBars(&buf, 2<<30, 0, 50)
	b.width = func() int { return cols }
	busy(b, clk, 2<<30)
	if ls := replay(buf.String(), 50).lines(); len(ls) != 5 {
		t.Fatalf("want the line before and a block of 4, got %q", ls)
	}
	// Two files end: the block shrinks to two lines.
	clk.advance(time.Second)
	b.update(peer.Progress{Confirmed: 1 << 30, Total: 2 << 30, Files: []peer.FileProgress{
		{Index: 0, Path: "a", Size: 40 * mib, Confirmed: 40 * mib, Complete: true},
		{Index: 1, Path: "b", Size: 2 * mib, Confirmed: 2 * mib},
	}})
	s := replay(buf.String(), 50)
	s.check(t)
	ls := s.lines()
	if len(ls) != 3 || ls[0] != "Sending 3 files (2.0 GiB)..." || !strings.Contains(ls[1], "x.bin") || !strings.HasPrefix(ls[2], "total") {
		t.Fatalf("after two files ended the screen is\n%s", strings.Join(ls, "\n"))
	}
	// The terminal narrows: lines are cut to the new width.
	cols = 30
	clk.advance(time.Second)
	b.update(peer.Progress{Confirmed: 1<<30 + 1, Total: 2 << 30})
	b.finish()
	s = replay(buf.String(), 50)
	ls = s.lines()
	if len(ls) != 2 || strings.Contains(ls[1], "x.bin") || textCols(ls[1]) > 29 {
		t.Fatalf("after narrowing to 30 columns the screen is\n%s", strings.Join(ls, "\n"))
	}
}

func TestBarsFinishLeavesCursorBelow(t *testing.T) {
	var buf bytes.Buffer
	b, clk := testBars(&buf, 2<<30, 0, 80)
	busy(b, clk, 2<<30)
	b.finish()
	b.finish()                                            // again: nothing
	b.update(peer.Progress{Confirmed: 1, Total: 2 << 30}) // after: nothing
	buf.WriteString("Sent 3 files\n")
	s := replay(buf.String(), 80)
	s.check(t)
	ls := s.lines()
	if len(ls) != 5 || !strings.HasPrefix(ls[3], "total") || ls[4] != "Sent 3 files" {
		t.Fatalf("after finish the screen is\n%s", strings.Join(ls, "\n"))
	}
	if s.r != 5 || s.c != 0 {
		t.Errorf("cursor at row %d column %d, want 5, 0", s.r, s.c)
	}
}

func TestBarsConcurrentUpdates(t *testing.T) {
	var buf bytes.Buffer
	b, clk := testBars(&buf, 1<<30, 0, 80)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				clk.advance(time.Millisecond)
				b.update(peer.Progress{Confirmed: uint64(i) * mib, Total: 1 << 30, Files: []peer.FileProgress{
					{Index: g, Path: fmt.Sprint("f", g), Size: 1 << 30, Confirmed: uint64(i) * mib},
				}})
			}
		}()
	}
	wg.Wait()
	b.finish()
	replay(buf.String(), 80).check(t)
}
