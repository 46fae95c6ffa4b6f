package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSend1GiB measures a whole send→recv of a 1 GiB file over
// loopback, verified on disk afterwards, against one raw go-libp2p QUIC
// stream between two processes, alternating the two in the same run so
// that machine noise hits both. Run it with -benchtime=3x for three
// rounds. DSHARE_BENCH_BYTES changes the size.
func BenchmarkSend1GiB(b *testing.B) {
	size := int64(1 << 30)
	if s := os.Getenv("DSHARE_BENCH_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	tmp := b.TempDir()
	src := filepath.Join(tmp, "src.bin")
	writeRandom(b, src, size, 42)
	want := fileHash(b, src)

	var rawTime, dsTime time.Duration
	for i := 0; b.Loop(); i++ {
		raw := rawRun(b, size)
		rawTime += raw

		out := filepath.Join(tmp, "out"+strconv.Itoa(i))
		recv, addr := receiver(b, filepath.Join(tmp, "hr"), out, "--yes", "--once")
		t0 := time.Now()
		if _, stderr, err := dshare(b, 10*time.Minute, "send", "--home", filepath.Join(tmp, "hs"), "--offline", "--json", src, addr); err != nil {
			b.Fatalf("send: %v\n%s", err, stderr)
		}
		ds := time.Since(t0)
		dsTime += ds
		b.Logf("round %d: raw %.2fs, dshare %.2fs, ratio %.2f", i+1, raw.Seconds(), ds.Seconds(), raw.Seconds()/ds.Seconds())
		if err := recv.wait(b, time.Minute); err != nil {
			b.Fatalf("recv: %v", err)
		}
		if fileHash(b, filepath.Join(out, "src.bin")) != want {
			b.Fatal("received file differs")
		}
		os.RemoveAll(out)
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(dsTime), "dshare-MB/s")
	b.ReportMetric(mbps(rawTime), "raw-MB/s")
	b.ReportMetric(rawTime.Seconds()/dsTime.Seconds(), "ratio")
}

// rawRun sends size bytes over a plain go-libp2p QUIC stream between two
// processes of dshare-bench's raw baseline and returns the sender's wall
// time.
func rawRun(b *testing.B, size int64) time.Duration {
	b.Helper()
	l := exec.Command(bin("dshare-bench"), "raw-listen")
	out, err := l.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = l.Process.Kill(); _ = l.Wait() }()
	buf := make([]byte, 512)
	n, err := out.Read(buf)
	if err != nil {
		b.Fatal(err)
	}
	addr := strings.TrimSpace(string(buf[:n]))
	t0 := time.Now()
	if msg, err := exec.Command(bin("dshare-bench"), "raw-send", addr, strconv.FormatInt(size, 10)).CombinedOutput(); err != nil {
		b.Fatalf("dshare-bench raw-send: %v\n%s", err, msg)
	}
	return time.Since(t0)
}
