package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// privilegedEnv makes tests that need root and network namespaces
// mandatory: without it they skip when they cannot run.
const privilegedEnv = "DSHARE_PRIVILEGED_TESTS"

// needNetns skips (or, with DSHARE_PRIVILEGED_TESTS=1, fails) unless the
// test can create network namespaces.
func needNetns(t *testing.T) {
	t.Helper()
	needRoot(t, "to create network namespaces")
	if _, err := exec.LookPath("ip"); err != nil {
		privileged(t, "needs iproute2 (the ip command)")
	}
}

// needRoot skips (or, with DSHARE_PRIVILEGED_TESTS=1, fails) unless the
// test runs as root; what says what root is needed for.
func needRoot(t *testing.T, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		privileged(t, "needs root "+what)
	}
}

func privileged(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(privilegedEnv) == "1" {
		t.Fatalf("%s, and %s=1 makes this test mandatory", why, privilegedEnv)
	}
	t.Skipf("skipped: %s; run as root with %s=1 to require it", why, privilegedEnv)
}

// lab is a set of network namespaces made by one test. Nothing in it is
// linked to the host's own network.
type lab struct {
	t      *testing.T
	prefix string
	nss    []string
	links  int
}

func newLab(t *testing.T) *lab {
	needNetns(t)
	l := &lab{t: t, prefix: fmt.Sprintf("dsh%d", os.Getpid()%100000)}
	t.Cleanup(l.close)
	return l
}

func (l *lab) ip(args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ns creates a namespace with its loopback up and returns its name.
func (l *lab) ns(name string) string {
	l.t.Helper()
	full := l.prefix + name
	l.ip("netns", "add", full)
	l.nss = append(l.nss, full)
	l.ip("-n", full, "link", "set", "lo", "up")
	return full
}

// bridge creates a namespace holding a bridge, a switch for hosts.
func (l *lab) bridge(name string) string {
	l.t.Helper()
	ns := l.ns(name)
	l.ip("-n", ns, "link", "add", "br0", "type", "bridge")
	l.ip("-n", ns, "link", "set", "br0", "up")
	return ns
}

// plug links host namespace ns to the bridge in brNS with address cidr.
// Interface names are unique to the lab, as veth pairs are created in the
// test's own namespace before they move.
func (l *lab) plug(ns, brNS, ifname, cidr string) {
	l.t.Helper()
	l.links++
	tmpName := fmt.Sprintf("%sv%d", l.prefix, l.links)
	peerName := fmt.Sprintf("%sp%d", l.prefix, l.links)
	l.ip("link", "add", tmpName, "type", "veth", "peer", "name", peerName)
	l.ip("link", "set", tmpName, "netns", ns)
	l.ip("link", "set", peerName, "netns", brNS)
	l.ip("-n", ns, "link", "set", tmpName, "name", ifname)
	l.ip("-n", brNS, "link", "set", peerName, "master", "br0", "up")
	l.ip("-n", ns, "addr", "add", cidr, "dev", ifname)
	l.ip("-n", ns, "link", "set", ifname, "up", "multicast", "on")
}

func (l *lab) close() {
	for i := len(l.nss) - 1; i >= 0; i-- {
		_ = exec.Command("ip", "netns", "del", l.nss[i]).Run()
	}
}

func inNS(ns string) []string { return []string{"ip", "netns", "exec", ns} }
