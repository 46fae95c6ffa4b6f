package peer

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// quotaWindow is the period of a relay's per-peer quota.
const quotaWindow = 24 * time.Hour

// meter paces and counts what a relay reads from each peer: a rate per
// peer, one rate for all peers together, and a total per peer per day.
// Every relayed byte counts against the peer that sent it.
type meter struct {
	peerRate int           // bytes per second per peer; 0 for no cap
	global   *rate.Limiter // nil for no cap
	quota    uint64        // bytes per peer per quotaWindow; 0 for none
	now      func() time.Time
	// onQuota is called once when a peer's quota runs out in a window.
	onQuota func(peer.ID)

	mu    sync.Mutex
	peers map[peer.ID]*peerMeter
}

type peerMeter struct {
	lim   *rate.Limiter // nil for no cap
	since time.Time     // start of the quota window
	used  uint64        // bytes in the window
	seen  time.Time     // last use
}

func newMeter(peerRate, globalRate int, quota uint64) *meter {
	m := &meter{peerRate: peerRate, quota: quota, now: time.Now, peers: map[peer.ID]*peerMeter{}}
	if globalRate > 0 {
		m.global = rate.NewLimiter(rate.Limit(globalRate), burstFor(globalRate))
	}
	return m
}

// burstFor is a limiter's bucket: a quarter second's worth, and at least
// one relay buffer.
func burstFor(r int) int { return max(r/4, 64<<10) }

// peer returns p's meter, starting a new quota window if the last one
// is over. The caller holds m.mu.
func (m *meter) peer(p peer.ID) *peerMeter {
	now := m.now()
	pm := m.peers[p]
	if pm == nil {
		pm = &peerMeter{since: now}
		if m.peerRate > 0 {
			pm.lim = rate.NewLimiter(rate.Limit(m.peerRate), burstFor(m.peerRate))
		}
		m.peers[p] = pm
	}
	if now.Sub(pm.since) >= quotaWindow {
		pm.since, pm.used = now, 0
	}
	pm.seen = now
	return pm
}

// exhausted reports whether p has used up its quota.
func (m *meter) exhausted(p peer.ID) bool {
	if m.quota == 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peer(p).used >= m.quota
}

// maxRead is the most one read may take: no more than a limiter's bucket.
func (m *meter) maxRead(p peer.ID, want int) int {
	if m.global != nil {
		want = min(want, m.global.Burst())
	}
	if m.peerRate > 0 {
		want = min(want, burstFor(m.peerRate))
	}
	return want
}

// charge counts n bytes read from p and waits until both rates allow
// them. It reports false once p's quota is used up.
func (m *meter) charge(ctx context.Context, p peer.ID, n int) bool {
	m.mu.Lock()
	pm := m.peer(p)
	before := pm.used
	pm.used += uint64(n)
	lim := pm.lim
	over := m.quota > 0 && pm.used >= m.quota
	m.mu.Unlock()
	if over && before < m.quota && m.onQuota != nil {
		m.onQuota(p)
	}
	if lim != nil {
		_ = lim.WaitN(ctx, n)
	}
	if m.global != nil {
		_ = m.global.WaitN(ctx, n)
	}
	return !over
}

// used returns the bytes p has sent in its current quota window.
func (m *meter) used(p peer.ID) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peer(p).used
}

// forget drops peers idle for longer than the quota window, whose count
// is then over, or without a quota for ten minutes.
func (m *meter) forget() {
	keep := 10 * time.Minute
	if m.quota > 0 {
		keep = quotaWindow
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for p, pm := range m.peers {
		if now.Sub(pm.seen) > keep { // with a quota, its window is over too
			delete(m.peers, p)
		}
	}
}
