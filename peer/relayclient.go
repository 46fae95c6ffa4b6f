package peer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
)

// RelayRefusedError is a relay's refusal of a reservation or a circuit,
// with the reason its status code gives.
type RelayRefusedError struct {
	Relay   peer.ID // empty when the dial error does not say
	Reserve bool    // a reservation, not a circuit
	Reason  RelayReason
}

func (e *RelayRefusedError) Error() string {
	if e.Reserve {
		return fmt.Sprintf("relay %s refused a reservation: %s", e.Relay, e.Reason)
	}
	return "the relay refused the connection: " + e.Reason.String()
}

// Permanent reports whether trying again soon cannot help: the peer is
// not allowed, or its day's quota is spent.
func (e *RelayRefusedError) Permanent() bool {
	return e.Reason == ReasonQuota || e.Reason == ReasonNotAllowed
}

// libp2p's circuit dialer reports a refusal only in its error text:
// "error opening relay circuit: NO_RESERVATION (204)".
var circuitRefusal = regexp.MustCompile(`error opening relay circuit: [A-Z_]+ \((\d+)\)`)

// RelayRefusal finds, in the error of a dial that went through a relay,
// the relay's refusal of the circuit. Where several relays answered, the
// most telling answer wins.
func RelayRefusal(err error) (*RelayRefusedError, bool) {
	var re *RelayRefusedError
	if errors.As(err, &re) {
		return re, true
	}
	if err == nil {
		return nil, false
	}
	best := ReasonNone
	for _, m := range circuitRefusal.FindAllStringSubmatch(err.Error(), -1) {
		code, _ := strconv.Atoi(m[1])
		r := reasonFor(pbv2.Status(code), false)
		if best == ReasonNone || refusalRank(r) > refusalRank(best) {
			best = r
		}
	}
	if best == ReasonNone {
		return nil, false
	}
	return &RelayRefusedError{Reason: best}, true
}

// refusalRank orders reasons by how much they tell: a quota is a verdict,
// a destination that did not answer may be a passing failure.
func refusalRank(r RelayReason) int {
	switch r {
	case ReasonQuota, ReasonNotAllowed:
		return 3
	case ReasonNoReservation, ReasonCircuits:
		return 2
	}
	return 1
}

// RelayCheck is the outcome of asking one relay for a reservation.
type RelayCheck struct {
	Relay peer.ID
	// Err is nil when the relay granted a slot; a *RelayRefusedError
	// when it refused one; otherwise why it could not be asked.
	Err error
}

// CheckRelays asks each relay for a reservation once, beside the ones
// libp2p keeps, so that a refusal is known at startup instead of showing
// only as silence. report is called once per relay, from its own goroutine.
func CheckRelays(ctx context.Context, h host.Host, relays []peer.AddrInfo, report func(RelayCheck)) {
	var wg sync.WaitGroup
	for _, ai := range relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			report(RelayCheck{Relay: ai.ID, Err: checkRelay(ctx, h, ai)})
		}()
	}
	wg.Wait()
}

func checkRelay(ctx context.Context, h host.Host, ai peer.AddrInfo) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := h.Connect(ctx, ai); err != nil {
		return fmt.Errorf("relay %s could not be reached: %w", ai.ID, err)
	}
	_, err := client.Reserve(ctx, h, ai)
	var re client.ReservationError
	if errors.As(err, &re) && re.Status != pbv2.Status_CONNECTION_FAILED {
		return &RelayRefusedError{Relay: ai.ID, Reserve: true, Reason: reasonFor(re.Status, true)}
	}
	if err != nil {
		return fmt.Errorf("relay %s did not answer a reservation: %w", ai.ID, err)
	}
	return nil
}
