package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// link joins two namespaces with a veth pair.
func (l *lab) link(nsA, ifA, cidrA, nsB, ifB, cidrB string) {
	l.t.Helper()
	l.links++
	a, b := fmt.Sprintf("%sa%d", l.prefix, l.links), fmt.Sprintf("%sb%d", l.prefix, l.links)
	l.ip("link", "add", a, "type", "veth", "peer", "name", b)
	for _, s := range [][4]string{{a, nsA, ifA, cidrA}, {b, nsB, ifB, cidrB}} {
		l.ip("link", "set", s[0], "netns", s[1])
		l.ip("-n", s[1], "link", "set", s[0], "name", s[2])
		l.ip("-n", s[1], "addr", "add", s[3], "dev", s[2])
		l.ip("-n", s[1], "link", "set", s[2], "up")
	}
}

func (l *lab) run(ns string, args ...string) {
	l.t.Helper()
	full := append(inNS(ns), args...)
	if out, err := exec.Command(full[0], full[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// natted puts a host behind a NAT router on the internet switch. The NAT
// is plain MASQUERADE, which keeps ports (endpoint-independent mapping),
// or with symmetric, --random-fully, which gives every destination its
// own random port, so that hole punching cannot work.
func (l *lab) natted(name, inet, public, lanPrefix string, symmetric bool) (router, host string) {
	l.t.Helper()
	router, host = l.ns(name+"r"), l.ns(name+"h")
	l.plug(router, inet, "wan", public+"/24")
	l.link(router, "lan", lanPrefix+".1/24", host, "eth0", lanPrefix+".2/24")
	l.ip("-n", host, "route", "add", "default", "via", lanPrefix+".1")
	l.run(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	rule := []string{"iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"}
	if symmetric {
		rule = append(rule, "--random-fully")
	}
	l.run(router, rule...)
	// Like a home router, drop what nobody asked for instead of answering
	// it. A dropped packet leaves no conntrack entry; one answered with
	// ICMP would, and the entry would take the port that the inside host's
	// own hole-punching packet needs a moment later.
	l.run(router, "iptables", "-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP")
	return router, host
}

func needIptables(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		privileged(t, "needs iptables for the NAT lab")
	}
}

// TestNAT runs a relay on an "internet" switch, a receiver behind NAT A
// and a sender behind NAT B. The sender knows only the receiver's peer ID
// and the relay's address. Behind cone NATs the transfer must end up
// direct (hole punched); behind symmetric NATs it must finish over the
// relay. The internet addresses look public to libp2p, which is safe only
// because nothing in the lab is linked to the host's network.
func TestNAT(t *testing.T) {
	for _, tc := range []struct {
		name      string
		symmetric bool
		path      string
		relayArgs []string
		sendArgs  []string
		holdPunch bool
		byCode    bool // the sender names the receiver by its short code
	}{
		// A real relay is slower than the direct path; data starts over
		// it at once and moves when the punch gets through.
		{name: "cone", path: "direct", relayArgs: []string{"--peer-rate", "4M"}},
		{name: "cone, by code", path: "direct", byCode: true, relayArgs: []string{"--peer-rate", "4M"}},
		{name: "symmetric", symmetric: true, path: "relayed"},
		// Data starts over a slow relay at once, while NAT B drops the
		// direct path; once it lets the punch through, the same session
		// moves to the direct path.
		{name: "upgrade", path: "direct", relayArgs: []string{"--peer-rate", "1M"}, holdPunch: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			needIptables(t)
			inet := l.bridge("inet")
			relayNS := l.ns("relay")
			l.plug(relayNS, inet, "eth0", "7.0.0.1/24")
			_, a := l.natted("A", inet, "7.0.0.2", "10.1.0", tc.symmetric)
			routerB, b := l.natted("B", inet, "7.0.0.3", "10.2.0", tc.symmetric)
			hold := []string{"FORWARD", "-d", "7.0.0.2", "-j", "DROP"} // B to A, but not to the relay
			if tc.holdPunch {
				l.run(routerB, append([]string{"iptables", "-I"}, hold...)...)
			}

			tmp := t.TempDir()
			relay := start(t, inNS(relayNS), append([]string{"relay", "--open", "--home", filepath.Join(tmp, "hr"), "--json",
				"--listen", "/ip4/7.0.0.1/udp/4747/quic-v1", "--listen", "/ip4/7.0.0.1/tcp/4747"}, tc.relayArgs...)...)
			ev := relay.next(t, "listening", 20*time.Second)
			r := "/ip4/7.0.0.1/udp/4747/quic-v1/p2p/" + ev.str("peer")

			out := filepath.Join(tmp, "out")
			recv := start(t, inNS(a), "recv", "--home", filepath.Join(tmp, "ha"), "--json", "--yes", "--once",
				"--dir", out, "--bootstrap", r, "--relay", r)
			src := filepath.Join(tmp, "src")
			writeRandom(t, filepath.Join(src, "file.bin"), 64<<20, 21)
			// Both start fresh: the sender does not wait for the receiver
			// to get its relay slot or to learn its public address.
			listening := recv.next(t, "listening", 20*time.Second)
			target := listening.str("peer")
			if tc.byCode {
				target = listening.str("code") // found through the DHT, under the code's tag
			}
			startAt := time.Now()
			send := start(t, inNS(b), append(append([]string{"send", "--home", filepath.Join(tmp, "hb"), "--json", "--bootstrap", r},
				tc.sendArgs...), filepath.Join(src, "file.bin"), target)...)
			found := send.next(t, "found", time.Minute)
			if tc.byCode {
				sent, got := send.next(t, "paired", time.Minute), recv.next(t, "paired", time.Minute)
				if sent.str("words") == "" || sent.str("words") != got.str("words") {
					t.Fatalf("verification words: sender %q, receiver %q", sent.str("words"), got.str("words"))
				}
			}
			t.Logf("found after %.2fs via %s: %v", time.Since(startAt).Seconds(), found.str("via"), found["addrs"])
			acc := send.next(t, "accepted", time.Minute)
			t.Logf("accepted after %.2fs over a %s connection", time.Since(startAt).Seconds(), acc.str("path"))
			if tc.holdPunch {
				// libp2p's punch retries its dial for a few seconds; let it
				// through while data already flows over the relay.
				time.Sleep(500 * time.Millisecond)
				l.run(routerB, append([]string{"iptables", "-D"}, hold...)...)
			}
			done := send.next(t, "done", 3*time.Minute)
			if err := send.wait(t, 30*time.Second); err != nil {
				t.Fatalf("send: %v\n%s", err, send.stderr)
			}
			if err := recv.wait(t, 30*time.Second); err != nil {
				t.Fatalf("recv: %v\n%s", err, recv.stderr)
			}
			t.Logf("%s NATs: path %s, accepted after %.2fs, first data byte after %.2fs, done after %.2fs (wall %.2fs); %d of %d bytes relayed, %d sessions",
				tc.name, done.str("path"), done["accepted"], done["first_byte"], done["total_seconds"], time.Since(startAt).Seconds(),
				done.num("relayed_bytes"), done.num("sent"), done.num("sessions"))
			// Over an unlimited relay, data starts as soon as the
			// receiver says yes; punching goes on meanwhile.
			if wait := done["first_byte"].(float64) - done["accepted"].(float64); wait > 1 {
				t.Fatalf("the first data byte left %.2fs after the receiver accepted, want within 1 s", wait)
			}
			if done.num("sessions") != 1 {
				t.Fatalf("%d sessions: the transfer restarted", done.num("sessions"))
			}
			if tc.name == "upgrade" && (done.num("relayed_bytes") == 0 || done.num("relayed_bytes") >= done.num("sent")) {
				t.Fatalf("%d of %d bytes relayed: no move from the relay to the direct path happened", done.num("relayed_bytes"), done.num("sent"))
			}
			if done.str("path") != tc.path {
				t.Fatalf("path %q, want %q\nsender: %s\nreceiver: %s", done.str("path"), tc.path, send.stderr, recv.stderr)
			}
			sameTree(t, src, out)
		})
	}
}
