package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/skip2/go-qrcode"

	"github.com/dshare/dshare/discovery"
	"github.com/dshare/dshare/peer"
	"github.com/dshare/dshare/peer/pair"
)

// codeTTL is how long a receiver answers to one code. What a code gives
// away (the tag it answers to, a DHT record) is worth nothing once it has
// expired, long before a guess at it could succeed.
const codeTTL = 10 * time.Minute

// pairing is a receiver's side: the secrets it answers to and how it
// tells the user about them.
type pairing struct {
	e      *env
	h      host.Host
	host   *pair.Host
	ticket string
	mu     sync.Mutex
	code   string
}

// startPairing makes the receiver answer to a ticket, and unless offline
// to a code that is renewed as it expires and, with a DHT, advertised.
func startPairing(ctx context.Context, e *env, n *node, withCode, withDHT bool) *pairing {
	p := &pairing{e: e, h: n.h, host: pair.NewHost()}
	tk := pair.NewTicket([]byte(n.h.ID()), ticketAddrs(n.h))
	p.host.Add(tk.Secret(), 0)
	p.ticket = tk.String()
	peer.ServePairing(ctx, n.h, p.host, p.report)
	if !withCode {
		return p
	}
	renew := func() context.CancelFunc {
		code, sec := pair.NewCode()
		p.host.Add(sec, codeTTL)
		p.mu.Lock()
		p.code = code
		p.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, codeTTL)
		if withDHT {
			go func() {
				select {
				case <-n.ready:
				case <-cctx.Done():
					return
				}
				if n.dht != nil {
					n.dht.AdvertiseTag(cctx, sec.Tag[:])
				}
			}()
		}
		return cancel
	}
	cancel := renew()
	go func() {
		tick := time.NewTicker(codeTTL)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				cancel()
				return
			case <-tick.C:
				cancel()
				cancel = renew()
				code := p.currentCode()
				e.events.emit("code", map[string]any{"code": code, "expires": codeTTL.Seconds()})
				if !e.json {
					fmt.Fprintf(e.stderr, "The code expired; the new one is %s\n", code)
				}
			}
		}
	}()
	return p
}

func (p *pairing) currentCode() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// report tells of each pairing attempt.
func (p *pairing) report(remote lpeer.ID, words string, err error) {
	if err != nil {
		p.e.events.emit("pair_refused", map[string]any{"peer": remote.String(), "error": err.Error()})
		if !p.e.json && !errors.Is(err, pair.ErrNoCode) {
			fmt.Fprintf(p.e.stderr, "dshare: %s tried to pair and failed: %s\n", remote, peer.EscapeText(err.Error()))
		}
		return
	}
	p.e.events.emit("paired", map[string]any{"peer": remote.String(), "words": words})
}

// words returns the verification words of a peer that paired, if any.
func (p *pairing) words(id string) (string, bool) {
	if p == nil {
		return "", false
	}
	pid, err := lpeer.Decode(id)
	if err != nil {
		return "", false
	}
	return p.host.Paired(string(pid))
}

// announce tells how to send here: by code, by ticket, by peer ID.
func (p *pairing) announce(dir string) {
	e := p.e
	code := p.currentCode()
	if e.json {
		return
	}
	fmt.Fprintf(e.stderr, "Receiving into %s as %s\nOn the other machine run one of:\n", dir, p.h.ID())
	if code != "" {
		fmt.Fprintf(e.stderr, "  dshare send FILE %s   (this code works for %v)\n", code, codeTTL)
	}
	fmt.Fprintf(e.stderr, "  dshare send FILE %s\n", p.ticket)
	if isTerminal(e.stderr) {
		if qr, err := qrcode.New(strings.ToUpper(p.ticket), qrcode.Low); err == nil {
			art := qr.ToSmallString(false)
			if cols, _ := termSize(e.stderr); strings.Index(art, "\n") < cols {
				fmt.Fprintf(e.stderr, "The ticket as a QR code:\n%s", art)
			}
		}
	}
}

// ticketAddrs returns the host's addresses for a ticket: addresses other
// machines can use first, loopback last.
func ticketAddrs(h host.Host) [][]byte {
	addrs := h.Addrs()
	rank := func(a ma.Multiaddr) int {
		switch {
		case manet.IsIPLoopback(a):
			return 3
		case manet.IsIP6LinkLocal(a):
			return 2
		}
		if ip, err := manet.ToIP(a); err == nil && ip.To4() == nil {
			return 1
		}
		return 0
	}
	sort.SliceStable(addrs, func(i, j int) bool { return rank(addrs[i]) < rank(addrs[j]) })
	var out [][]byte
	for _, a := range addrs {
		out = append(out, a.Bytes())
	}
	return out
}

// parseTicketTarget turns a ticket into the receiver's address and the
// secret to prove.
func parseTicketTarget(s string) (lpeer.AddrInfo, pair.Secret, error) {
	tk, err := pair.ParseTicket(s)
	if err != nil {
		return lpeer.AddrInfo{}, pair.Secret{}, usageError{err.Error()}
	}
	id, err := lpeer.IDFromBytes(tk.Peer)
	if err != nil {
		return lpeer.AddrInfo{}, pair.Secret{}, usageError{fmt.Sprintf("%v: its peer ID is malformed", pair.ErrBadTicket)}
	}
	info := lpeer.AddrInfo{ID: id}
	for _, b := range tk.Addrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			info.Addrs = append(info.Addrs, a)
		}
	}
	return info, tk.Secret(), nil
}

// findByCode looks for the receiver that answers to sec: every receiver
// on the LAN, and those advertised under its tag in the DHT, are asked,
// and the first to prove the code wins.
func findByCode(ctx context.Context, e *env, n *node, nf *netFlags, code string, sec pair.Secret, wait time.Duration) (lpeer.AddrInfo, string, error) {
	outer := ctx
	if global(e, nf) {
		wait *= 6
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	type hit struct {
		info  lpeer.AddrInfo
		words string
	}
	hits := make(chan hit, 1)
	var (
		mu      sync.Mutex
		asked   = map[lpeer.ID]bool{}
		refused []error
		wg      sync.WaitGroup
	)
	try := func(info lpeer.AddrInfo) {
		mu.Lock()
		if asked[info.ID] || info.ID == n.h.ID() {
			mu.Unlock()
			return
		}
		asked[info.ID] = true
		wg.Add(1)
		mu.Unlock()
		go func() {
			defer wg.Done()
			if hasRelayedAddr(info) {
				// Behind a NAT: be ready to punch before connecting
				// through its relay.
				peer.WaitHolePunchReady(ctx, n.h)
			}
			cctx, c := context.WithTimeout(ctx, 10*time.Second)
			defer c()
			err := n.h.Connect(cctx, info)
			var words string
			if err == nil {
				words, err = peer.Pair(cctx, n.h, info.ID, sec)
			}
			if err != nil {
				mu.Lock()
				refused = append(refused, err)
				mu.Unlock()
				return
			}
			select {
			case hits <- hit{info, words}:
			default:
			}
			cancel()
		}()
	}
	var producers sync.WaitGroup
	producers.Add(1)
	var lanErr error
	go func() {
		defer producers.Done()
		var settle sync.Once
		bctx, bcancel := context.WithCancel(ctx)
		defer bcancel()
		lanErr = discovery.Browse(bctx, n.h.ID(), func(info lpeer.AddrInfo) {
			settle.Do(func() { time.AfterFunc(750*time.Millisecond, bcancel) })
			try(info)
		})
	}()
	var dhtErr error
	if global(e, nf) {
		producers.Add(1)
		go func() {
			defer producers.Done()
			select {
			case <-n.ready:
			case <-ctx.Done():
				return
			}
			if n.dht == nil {
				dhtErr = n.err
				return
			}
			// A receiver that has just started may not have advertised
			// yet: look again until the wait is over.
			for {
				n.dht.FindTag(ctx, sec.Tag[:], try)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		producers.Wait() // no more tries: wg.Add has run for each
		wg.Wait()
		close(done)
	}()
	found := func(h hit) (lpeer.AddrInfo, string, error) {
		e.events.emit("found", map[string]any{"peer": h.info.ID.String(), "via": "code", "addrs": addrStrings(h.info)})
		return h.info, h.words, nil
	}
	select {
	case h := <-hits:
		return found(h)
	case <-done:
	}
	select {
	case h := <-hits:
		return found(h)
	default:
	}
	if outer.Err() != nil {
		return lpeer.AddrInfo{}, "", fmt.Errorf("%w while looking for the receiver of the code", errInterrupted)
	}
	mu.Lock()
	n2, errs := len(asked), errors.Join(refused...)
	mu.Unlock()
	switch {
	case errors.Is(errs, pair.ErrBurned):
		return lpeer.AddrInfo{}, "", sentence{"the receiver stopped answering to this code after too many wrong tries; ask for a new one", errs}
	case errors.Is(errs, pair.ErrWrongCode):
		return lpeer.AddrInfo{}, "", sentence{"a peer answered to the code but could not prove it knows it, so nothing was sent; check the code, or use the ticket", errs}
	case n2 > 0:
		return lpeer.AddrInfo{}, "", sentence{fmt.Sprintf("none of the %s found knows the code %s; check it for a typo, or ask for the current one (a code works for %v)",
			count(n2, "receiver"), code, codeTTL), errs}
	case errors.Is(lanErr, discovery.ErrNoLAN) && (!global(e, nf) || dhtErr != nil):
		return lpeer.AddrInfo{}, "", sentence{"no receiver can be looked for: this machine is on no network; connect to one, or use the receiver's ticket", errors.Join(lanErr, dhtErr)}
	}
	return lpeer.AddrInfo{}, "", fmt.Errorf("no receiver answered to the code %s within %v; is 'dshare recv' running there?", code, wait)
}
