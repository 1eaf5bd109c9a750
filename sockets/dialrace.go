package sockets

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-go/outbound/internal/obs"
)

// This file is how a Dialer connects once the policy has chosen the
// addresses. It follows net.Dialer (src/net/dial.go: dialParallel,
// dialSerial, partialDeadline; src/net/ipsock.go: partition), so that a
// dead address or a broken address family costs a dial what it costs any
// other Go client, and no more:
//
//   - over "tcp", the addresses of the first answer's family race those of
//     the other family, which start after the fallback delay, or at once
//     when the first family has failed ("Happy Eyeballs", RFC 8305 section
//     5, RFC 6555);
//   - within a family, and over every other network, the addresses are
//     tried in turn, each with its share of the time left;
//   - the first connection wins, and every other one is closed before the
//     dial returns.
//
// Two differences are deliberate. net.Dialer returns as soon as a racer
// wins and leaves the loser to close its connection on its own;
// dialParallel cancels the loser and waits for it, so that no goroutine
// outlives the dial (the loser's connect sees its context canceled and
// returns at once). And net.Dialer runs each racer in a goroutine of its
// own; dialParallel runs the primaries in the calling goroutine and starts
// one for the fallbacks only when the fallback delay expires, so that a
// dial whose first address works starts no goroutine.

// defaultFallbackDelay is net.Dialer's default fallback delay, the 300 ms
// that RFC 8305 section 8 recommends as the Connection Attempt Delay.
const defaultFallbackDelay = 300 * time.Millisecond

// saneMinimum is the shortest share of the deadline an attempt gets while
// the time left allows it, as in net.Dialer's partialDeadline.
const saneMinimum = 2 * time.Second

// fallbackDelay returns FallbackDelay, or the default for zero.
func (d *Dialer) fallbackDelay() time.Duration {
	if d.FallbackDelay > 0 {
		return d.FallbackDelay
	}
	return defaultFallbackDelay
}

// dialAddrs connects to one of addrs, which all passed the policy, and
// returns the connection and the address it reached. When every attempt
// fails it returns the error of the first attempt in the first family.
func (d *Dialer) dialAddrs(ctx context.Context, network, host string, addrs []netip.AddrPort) (net.Conn, netip.AddrPort, error) {
	primaries, fallbacks := addrs, []netip.AddrPort(nil)
	if network == "tcp" && d.FallbackDelay >= 0 {
		primaries, fallbacks = partition(addrs)
	}
	if len(fallbacks) == 0 {
		return d.dialSerial(ctx, network, host, primaries)
	}
	return d.dialParallel(ctx, network, host, primaries, fallbacks)
}

// isIPv4 reports whether ap is dialed over IPv4 (an IPv4-mapped IPv6
// address is: the connect step unmaps it).
func isIPv4(ap netip.AddrPort) bool { return ap.Addr().Unmap().Is4() }

// partition splits addrs into the addresses of the first one's family and
// the others, each in the resolver's order. When all share one family it
// returns addrs itself and no fallbacks, without allocating.
func partition(addrs []netip.AddrPort) (primaries, fallbacks []netip.AddrPort) {
	if len(addrs) == 0 {
		return addrs, nil
	}
	first := isIPv4(addrs[0])
	n := 0
	for _, ap := range addrs {
		if isIPv4(ap) == first {
			n++
		}
	}
	if n == len(addrs) {
		return addrs, nil
	}
	buf := make([]netip.AddrPort, 0, len(addrs))
	for _, ap := range addrs {
		if isIPv4(ap) == first {
			buf = append(buf, ap)
		}
	}
	for _, ap := range addrs {
		if isIPv4(ap) != first {
			buf = append(buf, ap)
		}
	}
	return buf[:n:n], buf[n:]
}

// dialParallel races two dialSerials: the primaries at once, in the
// calling goroutine, and the fallbacks after the fallback delay, in the
// delay timer's goroutine, or in the calling goroutine as soon as the
// primaries have all failed. It returns the first connection made and
// closes any other; it returns only after both racers have ended. When
// both fail it returns the primaries' error.
//
// When the first primary connects within the fallback delay, the common
// case, the race costs a context and a stopped timer: no goroutine starts.
func (d *Dialer) dialParallel(ctx context.Context, network, host string, primaries, fallbacks []netip.AddrPort) (net.Conn, netip.AddrPort, error) {
	// Both racers share one context: the winner cancels it once its own
	// connect has returned, which stops the loser and leaves the
	// winner's connection alone.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fb := &fallbackRacer{d: d, ctx: ctx, cancel: cancel, network: network, host: host, addrs: fallbacks}
	fb.wg.Add(1)
	timer := time.AfterFunc(d.fallbackDelay(), fb.run)

	c, ap, err := d.dialSerial(ctx, network, host, primaries)
	if timer.Stop() {
		// The fallback never started.
		if err == nil {
			return c, ap, nil
		}
		// Every primary failed: fall back at once, in this goroutine.
		fb.run()
	} else {
		// The fallback has started (or is about to): wait for it, so
		// that nothing outlives the dial.
		if err == nil && fb.won.CompareAndSwap(false, true) {
			cancel()
		}
		fb.wg.Wait()
	}

	switch {
	case err == nil && fb.err == nil:
		// Both connected: the one that set won first wins.
		if fb.wonFirst {
			c.Close()
			return fb.conn, fb.addr, nil
		}
		fb.conn.Close()
		return c, ap, nil
	case err == nil:
		return c, ap, nil
	case fb.err == nil:
		return fb.conn, fb.addr, nil
	}
	return nil, netip.AddrPort{}, err
}

// fallbackRacer is the fallback side of dialParallel: the addresses it
// dials in turn, and what it got.
type fallbackRacer struct {
	d             *Dialer
	ctx           context.Context
	cancel        context.CancelFunc // stops the other racer
	network, host string
	addrs         []netip.AddrPort

	won atomic.Bool    // set by the first racer to connect
	wg  sync.WaitGroup // done when run has returned

	// Set by run, read after wg.Wait.
	conn     net.Conn
	addr     netip.AddrPort
	err      error
	wonFirst bool // run set won
}

// run dials the fallbacks in turn and, if it connects before the
// primary racer, stops the primary racer.
func (f *fallbackRacer) run() {
	defer f.wg.Done()
	f.conn, f.addr, f.err = f.d.dialSerial(f.ctx, f.network, f.host, f.addrs)
	if f.err == nil && f.won.CompareAndSwap(false, true) {
		f.wonFirst = true
		f.cancel()
	}
}

// dialSerial tries addrs in turn and returns the first connection made,
// or the first attempt's error. When ctx has a deadline, each attempt gets
// its share of the time left, so that an address that never answers
// cannot use it all.
func (d *Dialer) dialSerial(ctx context.Context, network, host string, addrs []netip.AddrPort) (net.Conn, netip.AddrPort, error) {
	var firstErr error // the first address's error says the most
	for i, ap := range addrs {
		if err := ctx.Err(); err != nil {
			return nil, netip.AddrPort{}, dialError(network, ap, err)
		}
		attemptCtx, cancel := ctx, context.CancelFunc(nil)
		if deadline, ok := ctx.Deadline(); ok {
			partial, ok := partialDeadline(time.Now(), deadline, len(addrs)-i)
			if !ok {
				// The time ran out between two attempts.
				if firstErr == nil {
					firstErr = dialError(network, ap, context.DeadlineExceeded)
				}
				break
			}
			if partial.Before(deadline) {
				attemptCtx, cancel = context.WithDeadline(ctx, partial)
			}
		}
		c, err := d.attempt(attemptCtx, network, host, ap)
		if cancel != nil {
			cancel()
		}
		if err == nil {
			return c, ap, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = &LookupError{Host: host, Err: obs.ErrNoAddresses}
	}
	return nil, netip.AddrPort{}, firstErr
}

// attempt connects to ap, and returns a connection or an error, never both
// and never neither (a Connect seam might). A timeout caused by ctx's
// deadline always matches context.DeadlineExceeded (see timeoutError).
func (d *Dialer) attempt(ctx context.Context, network, host string, ap netip.AddrPort) (net.Conn, error) {
	m := d.metrics(ctx)
	start := m.ConnectStart(ctx)
	c, err := d.connect(ctx, network, host, ap)
	switch {
	case err != nil:
		if c != nil {
			c.Close()
		}
		if deadlineTimeout(ctx, err) && !errors.Is(err, context.DeadlineExceeded) {
			err = &timeoutError{Err: err}
		}
	case c == nil:
		err = errNoConn
	}
	m.RecordConnect(ctx, network, ap, start, err)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// deadlineTimeout reports whether err is a timeout and ctx's deadline has
// passed. The clock is read as well as ctx.Err: net's connect gives up on
// the socket's own deadline, which can fire before the context's timer.
func deadlineTimeout(ctx context.Context, err error) bool {
	var t interface{ Timeout() bool }
	if !errors.As(err, &t) || !t.Timeout() {
		return false
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Before(deadline)
}

// partialDeadline returns the deadline of the next of addrsRemaining
// attempts in turn, before an overall deadline: an equal share of the time
// left, but at least saneMinimum while the time left allows it, and never
// past deadline. It reports false when no time is left. It is net.Dialer's
// partialDeadline.
func partialDeadline(now, deadline time.Time, addrsRemaining int) (time.Time, bool) {
	left := deadline.Sub(now)
	if left <= 0 {
		return time.Time{}, false
	}
	share := left / time.Duration(addrsRemaining)
	if share < saneMinimum {
		share = min(saneMinimum, left)
	}
	return now.Add(share), true
}

// dialError reports an attempt on ap that did not start because the dial's
// context ended or its time ran out, as net.Dialer does: a *net.OpError
// wrapping the context's error, so that a deadline is a timeout
// (net.Error's Timeout and errors.Is(err, context.DeadlineExceeded)) and a
// cancellation matches context.Canceled.
func dialError(network string, ap netip.AddrPort, err error) error {
	var addr net.Addr
	if strings.HasPrefix(network, "udp") {
		addr = net.UDPAddrFromAddrPort(ap)
	} else {
		addr = net.TCPAddrFromAddrPort(ap)
	}
	return &net.OpError{Op: "dial", Net: network, Addr: addr, Err: err}
}
