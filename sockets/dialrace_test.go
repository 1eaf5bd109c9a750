package sockets_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outbound-go/outbound/sockets"
)

// The tests in this file check how a Dialer connects once the policy has
// chosen the addresses: families raced, the deadline shared, losers
// closed, nothing left running. "Public" addresses reach a loopback server
// only through raceSeam, standing in for the final connect step; no packet
// leaves loopback. Timing runs in synctest bubbles, whose clock moves only
// when every goroutine in the bubble waits, so each elapsed time asserted
// is exact. The loopback servers run outside the bubbles (a goroutine
// waiting in Accept never lets a bubble's clock move).

// raceAnswer is how raceSeam answers a connect to one address.
type raceAnswer int

const (
	// answerBlackHole never answers: it waits for its context, as a connect
	// whose SYNs are dropped does, and fails with the context's error.
	answerBlackHole raceAnswer = iota + 1
	// answerBlackHoleNet is answerBlackHole failing with the error net's
	// own connect gives when the socket's deadline fires before the
	// context's timer: a *net.OpError wrapping os.ErrDeadlineExceeded, a
	// timeout that does not match context.DeadlineExceeded.
	answerBlackHoleNet
	// answerRefuse fails at once, as a connect answered with a RST.
	answerRefuse
	// answerAccept connects to the loopback server.
	answerAccept
	// answerAcceptLate connects to the loopback server after the seam's
	// lateBy, whatever its context says meanwhile: a connect that
	// completed as it was canceled.
	answerAcceptLate
)

// raceCall is one connect attempt that reached the seam.
type raceCall struct {
	addr netip.AddrPort
	at   time.Duration // since the seam was made
}

// raceSeam is a Dialer.Connect that answers each address as told, records
// every attempt with its time, counts the attempts in flight, and keeps
// every connection it made so a test can tell which were closed. An
// address it was not told about fails the test: only addresses the policy
// allowed may reach it.
type raceSeam struct {
	t         *testing.T
	answers   map[netip.AddrPort]raceAnswer
	tcpTarget string // loopback "ip:port" of the TCP server
	udpTarget string // loopback "ip:port" of the UDP server
	lateBy    map[netip.AddrPort]time.Duration
	start     time.Time

	inFlight atomic.Int64

	mu     sync.Mutex
	calls  []raceCall
	opened []*raceTrackedConn
}

// raceTrackedConn records whether it was closed.
type raceTrackedConn struct {
	net.Conn
	addr   netip.AddrPort
	closed atomic.Bool
}

func (c *raceTrackedConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func newRaceSeam(t *testing.T, tcpTarget, udpTarget string, answers map[string]raceAnswer) *raceSeam {
	t.Helper()
	s := &raceSeam{
		t:         t,
		answers:   map[netip.AddrPort]raceAnswer{},
		lateBy:    map[netip.AddrPort]time.Duration{},
		tcpTarget: tcpTarget,
		udpTarget: udpTarget,
		start:     time.Now(),
	}
	for a, how := range answers {
		s.answers[netip.MustParseAddrPort(a)] = how
	}
	for _, target := range []string{tcpTarget, udpTarget} {
		if target != "" && !netip.MustParseAddrPort(target).Addr().IsLoopback() {
			t.Fatalf("seam target %s is not loopback", target)
		}
	}
	return s
}

func (s *raceSeam) connect(ctx context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.mu.Lock()
	s.calls = append(s.calls, raceCall{ap, time.Since(s.start)})
	s.mu.Unlock()
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	how, ok := s.answers[ap]
	if !ok {
		s.t.Errorf("Connect(%s, %v): an address the test did not allow reached the connect step", network, ap)
		return nil, opErr(errUnreachable)
	}
	switch how {
	case answerBlackHole:
		<-ctx.Done()
		return nil, opErr(ctx.Err())
	case answerBlackHoleNet:
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, opErr(os.ErrDeadlineExceeded)
		}
		return nil, opErr(ctx.Err())
	case answerRefuse:
		return nil, opErr(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED})
	case answerAcceptLate:
		time.Sleep(s.lateBy[ap])
		ctx = context.WithoutCancel(ctx)
	}
	proto, target := "tcp", s.tcpTarget
	if network[:3] == "udp" {
		proto, target = "udp", s.udpTarget
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, proto, target)
	if err != nil {
		return nil, err
	}
	tc := &raceTrackedConn{Conn: c, addr: ap}
	s.mu.Lock()
	s.opened = append(s.opened, tc)
	s.mu.Unlock()
	return tc, nil
}

func (s *raceSeam) openedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.opened)
}

func (s *raceSeam) attempts() []raceCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// checkSettled checks what must hold whenever a dial has returned: no
// attempt is still running, and of the connections made only the winner's
// (the one to winner; none if winner is zero) is still open.
func (s *raceSeam) checkSettled(t *testing.T, winner netip.AddrPort) {
	t.Helper()
	if n := s.inFlight.Load(); n != 0 {
		t.Errorf("%d connect attempts still running after the dial returned", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	open := 0
	for _, c := range s.opened {
		switch {
		case c.addr == winner && c.closed.Load():
			t.Errorf("the winning connection to %v was closed", c.addr)
		case c.addr != winner && !c.closed.Load():
			t.Errorf("a losing connection to %v was left open", c.addr)
		}
		if !c.closed.Load() {
			open++
		}
	}
	if winner.IsValid() && open != 1 || !winner.IsValid() && open != 0 {
		t.Errorf("%d of %d connections open after the dial, want exactly the winner's", open, len(s.opened))
	}
}

// Public addresses the default policy allows. They are never dialed: the
// seam maps them to loopback.
const (
	raceV6a = "[2606:4700:4700::1111]:443"
	raceV6b = "[2606:4700:4700::1001]:443"
	raceV4a = "1.1.1.1:443"
	raceV4b = "1.0.0.1:443"
	raceV4c = "93.184.215.14:443"
)

// raceHost is the name every race test dials; its answers are the
// addresses given, in order.
const raceHost = "race.example"

// raceDialer returns a Dialer resolving raceHost to addrs (host:port
// strings; the port is raceHost's) and connecting through seam.
func raceDialer(seam *raceSeam, addrs []string, timeout, fallbackDelay time.Duration) *sockets.Dialer {
	var ips []string
	for _, a := range addrs {
		ips = append(ips, netip.MustParseAddrPort(a).Addr().String())
	}
	return &sockets.Dialer{
		Resolver:      newResolver(map[string][]string{raceHost: ips}),
		Connect:       seam.connect,
		Timeout:       timeout,
		FallbackDelay: fallbackDelay,
	}
}

// raceCalls builds the expected attempts from pairs of an address and its
// time (a time.Duration, or 0 for the start).
func raceCalls(pairs ...any) []raceCall {
	var cs []raceCall
	for i := 0; i < len(pairs); i += 2 {
		var at time.Duration
		switch v := pairs[i+1].(type) {
		case time.Duration:
			at = v
		case int:
			if v != 0 {
				panic("raceCalls: a time other than 0 must be a time.Duration")
			}
		}
		cs = append(cs, raceCall{netip.MustParseAddrPort(pairs[i].(string)), at})
	}
	return cs
}

// TestDialRaceConnects covers the dials that succeed: which address wins,
// exactly when, and which attempts were made when.
func TestDialRaceConnects(t *testing.T) {
	t.Parallel()
	srv := startGreeter(t, "127.0.0.1:0")
	udp := startRaceEchoUDP(t)
	for _, c := range []struct {
		name          string
		network       string
		answers       []string // in the resolver's order
		how           []raceAnswer
		timeout       time.Duration
		fallbackDelay time.Duration
		want          string        // the address connected
		at            time.Duration // when the dial returns
		calls         []raceCall
	}{
		// Happy Eyeballs (RFC 8305 section 5): the other family starts
		// after the fallback delay, 300 ms by default, not after the
		// first address's share of the timeout.
		{
			name: "dead IPv6 first, working IPv4", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerBlackHole, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV4a, at: 300 * time.Millisecond,
			calls: raceCalls(raceV6a, 0, raceV4a, 300*time.Millisecond),
		},
		{
			name: "dead IPv4 first, working IPv6", network: "tcp",
			answers: []string{raceV4a, raceV6a}, how: []raceAnswer{answerBlackHole, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV6a, at: 300 * time.Millisecond,
			calls: raceCalls(raceV4a, 0, raceV6a, 300*time.Millisecond),
		},
		{
			name: "dead IPv6 first, no deadline at all", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerBlackHole, answerAccept},
			want: raceV4a, at: 300 * time.Millisecond,
			calls: raceCalls(raceV6a, 0, raceV4a, 300*time.Millisecond),
		},
		{
			name: "two dead IPv6, working IPv4", network: "tcp",
			answers: []string{raceV6a, raceV6b, raceV4a}, how: []raceAnswer{answerBlackHole, answerBlackHole, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV4a, at: 300 * time.Millisecond,
			calls: raceCalls(raceV6a, 0, raceV4a, 300*time.Millisecond),
		},
		{
			name: "custom fallback delay", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerBlackHole, answerAccept},
			timeout: 30 * time.Second, fallbackDelay: 50 * time.Millisecond,
			want: raceV4a, at: 50 * time.Millisecond,
			calls: raceCalls(raceV6a, 0, raceV4a, 50*time.Millisecond),
		},
		{
			name: "long fallback delay", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerBlackHole, answerAccept},
			timeout: 30 * time.Second, fallbackDelay: 5 * time.Second,
			want: raceV4a, at: 5 * time.Second,
			calls: raceCalls(raceV6a, 0, raceV4a, 5*time.Second),
		},
		// A negative fallback delay turns the race off: the addresses
		// are tried in turn, each with its share of the time.
		{
			name: "negative fallback delay: in turn", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerBlackHole, answerAccept},
			timeout: 30 * time.Second, fallbackDelay: -1,
			want: raceV4a, at: 15 * time.Second,
			calls: raceCalls(raceV6a, 0, raceV4a, 15*time.Second),
		},
		// One dead server in a round-robin: each address gets its share of
		// the time left, so the dead one cannot use all of it.
		{
			name: "dead IPv4 A, working IPv4 B", network: "tcp",
			answers: []string{raceV4a, raceV4b}, how: []raceAnswer{answerBlackHole, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV4b, at: 15 * time.Second,
			calls: raceCalls(raceV4a, 0, raceV4b, 15*time.Second),
		},
		{
			name: "dead IPv4 A, working IPv4 B over tcp4", network: "tcp4",
			answers: []string{raceV4a, raceV4b}, how: []raceAnswer{answerBlackHole, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV4b, at: 15 * time.Second,
			calls: raceCalls(raceV4a, 0, raceV4b, 15*time.Second),
		},
		{
			name: "two dead, the third works", network: "tcp",
			answers: []string{raceV4a, raceV4b, raceV4c}, how: []raceAnswer{answerBlackHole, answerBlackHole, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV4c, at: 20 * time.Second,
			calls: raceCalls(raceV4a, 0, raceV4b, 10*time.Second, raceV4c, 20*time.Second),
		},
		// net.Dialer's sane minimum: a share shorter than 2 s is raised
		// to 2 s while that much is left, taking time from the last
		// addresses.
		{
			name: "short timeout, 2 s minimum share", network: "tcp",
			answers: []string{raceV4a, raceV4b}, how: []raceAnswer{answerBlackHole, answerAccept},
			timeout: 3 * time.Second,
			want:    raceV4b, at: 2 * time.Second,
			calls: raceCalls(raceV4a, 0, raceV4b, 2*time.Second),
		},
		{
			name: "short timeout, the last address gets what is left", network: "tcp",
			answers: []string{raceV4a, raceV4b, raceV4c}, how: []raceAnswer{answerBlackHole, answerBlackHole, answerAccept},
			timeout: 5 * time.Second,
			want:    raceV4c, at: 4 * time.Second,
			calls: raceCalls(raceV4a, 0, raceV4b, 2*time.Second, raceV4c, 4*time.Second),
		},
		// A fast failure moves on at once, in a family and across.
		{
			name: "refused first address", network: "tcp",
			answers: []string{raceV4a, raceV4b}, how: []raceAnswer{answerRefuse, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV4b, at: 0,
			calls: raceCalls(raceV4a, 0, raceV4b, 0),
		},
		{
			name: "refused IPv6, IPv4 at once", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerRefuse, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV4a, at: 0,
			calls: raceCalls(raceV6a, 0, raceV4a, 0),
		},
		// The families keep the resolver's order within them: the
		// primaries are raceV6a and raceV6b, the fallback raceV4a.
		{
			name: "interleaved families", network: "tcp",
			answers: []string{raceV6a, raceV4a, raceV6b}, how: []raceAnswer{answerBlackHole, answerRefuse, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV6b, at: 15 * time.Second,
			calls: raceCalls(raceV6a, 0, raceV4a, 300*time.Millisecond, raceV6b, 15*time.Second),
		},
		// The first address works: nothing else is tried.
		{
			name: "first address works", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerAccept, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV6a, at: 0,
			calls: raceCalls(raceV6a, 0),
		},
		// UDP is not raced, as net.Dialer does not race it (its connect
		// does not wait for the peer): the addresses are tried in turn.
		{
			name: "udp, dead first", network: "udp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerBlackHole, answerAccept},
			timeout: 30 * time.Second,
			want:    raceV4a, at: 15 * time.Second,
			calls: raceCalls(raceV6a, 0, raceV4a, 15*time.Second),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				answers := map[string]raceAnswer{}
				for i, a := range c.answers {
					answers[a] = c.how[i]
				}
				seam := newRaceSeam(t, srv.addr(), udp.addrPort().String(), answers)
				d := raceDialer(seam, c.answers, c.timeout, c.fallbackDelay)
				start := time.Now()
				conn, err := d.DialContext(t.Context(), c.network, raceHost+":443")
				elapsed := time.Since(start)
				if err != nil {
					t.Fatalf("after %v: %v", elapsed, err)
				}
				defer conn.Close()
				if elapsed != c.at {
					t.Errorf("connected after %v, want %v", elapsed, c.at)
				}
				if got, want := racePeer(t, conn), netip.MustParseAddrPort(c.want); got != want {
					t.Errorf("connected to %v, want %v", got, want)
				}
				if got := seam.attempts(); !slices.Equal(got, c.calls) {
					t.Errorf("attempts %v, want %v", got, c.calls)
				}
				seam.checkSettled(t, racePeer(t, conn))
				if c.network == "udp" {
					raceUDPRoundTrip(t, conn)
				} else {
					readHello(t, conn)
				}
			})
		})
	}
}

// TestDialRaceFails covers the dials where every attempt fails: when the
// dial gives up and what error it returns (the first error of the first
// family, as net.Dialer's).
func TestDialRaceFails(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		network  string
		answers  []string
		how      []raceAnswer
		timeout  time.Duration
		fallback time.Duration // FallbackDelay
		at       time.Duration
		calls    []raceCall
		errAddr  string // the address the error names
		timedOut bool   // a timeout (else a refusal)
	}{
		{
			name: "all dead, both families", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerBlackHole, answerBlackHole},
			timeout: 5 * time.Second, at: 5 * time.Second,
			calls:   raceCalls(raceV6a, 0, raceV4a, 300*time.Millisecond),
			errAddr: raceV6a, timedOut: true,
		},
		{
			name: "all dead, one family", network: "tcp4",
			answers: []string{raceV4a, raceV4b, raceV4c}, how: []raceAnswer{answerBlackHole, answerBlackHole, answerBlackHole},
			timeout: 5 * time.Second, at: 5 * time.Second,
			calls:   raceCalls(raceV4a, 0, raceV4b, 2*time.Second, raceV4c, 4*time.Second),
			errAddr: raceV4a, timedOut: true,
		},
		{
			name: "all dead, no race", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerBlackHole, answerBlackHole},
			timeout: 30 * time.Second, fallback: -1, at: 30 * time.Second,
			calls:   raceCalls(raceV6a, 0, raceV4a, 15*time.Second),
			errAddr: raceV6a, timedOut: true,
		},
		// net's own connect error for a deadline does not always match
		// context.DeadlineExceeded; the Dialer's does.
		{
			name: "all dead, net's timeout error", network: "tcp",
			answers: []string{raceV4a, raceV4b}, how: []raceAnswer{answerBlackHoleNet, answerBlackHoleNet},
			timeout: 30 * time.Second, at: 30 * time.Second,
			calls:   raceCalls(raceV4a, 0, raceV4b, 15*time.Second),
			errAddr: raceV4a, timedOut: true,
		},
		{
			name: "all refused", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerRefuse, answerRefuse},
			timeout: 5 * time.Second, at: 0,
			calls:   raceCalls(raceV6a, 0, raceV4a, 0),
			errAddr: raceV6a,
		},
		// The first family's first error is the one returned, even when
		// the other family's attempt ran into the deadline, as
		// net.Dialer does.
		{
			name: "refused IPv6, dead IPv4", network: "tcp",
			answers: []string{raceV6a, raceV4a}, how: []raceAnswer{answerRefuse, answerBlackHole},
			timeout: 5 * time.Second, at: 5 * time.Second,
			calls:   raceCalls(raceV6a, 0, raceV4a, 0),
			errAddr: raceV6a,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				answers := map[string]raceAnswer{}
				for i, a := range c.answers {
					answers[a] = c.how[i]
				}
				seam := newRaceSeam(t, "", "", answers)
				d := raceDialer(seam, c.answers, c.timeout, c.fallback)
				start := time.Now()
				conn, err := d.DialContext(t.Context(), c.network, raceHost+":443")
				elapsed := time.Since(start)
				if err == nil {
					conn.Close()
					t.Fatal("the dial succeeded")
				}
				if elapsed != c.at {
					t.Errorf("failed after %v, want %v: %v", elapsed, c.at, err)
				}
				if got := seam.attempts(); !slices.Equal(got, c.calls) {
					t.Errorf("attempts %v, want %v", got, c.calls)
				}
				seam.checkSettled(t, netip.AddrPort{})
				var oe *net.OpError
				if !errors.As(err, &oe) || oe.Addr == nil || oe.Addr.String() != c.errAddr {
					t.Errorf("error %v (%T); want a *net.OpError for %s", err, err, c.errAddr)
				}
				var ne net.Error
				isTimeout := errors.As(err, &ne) && ne.Timeout()
				isDeadline := errors.Is(err, context.DeadlineExceeded)
				if isTimeout != c.timedOut || isDeadline != c.timedOut {
					t.Errorf("error %v: net.Error timeout %v, matches DeadlineExceeded %v; want %v", err, isTimeout, isDeadline, c.timedOut)
				}
				if !c.timedOut && !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("error %v; want the refusal", err)
				}
				if errors.Is(err, sockets.ErrDenied) {
					t.Errorf("a connect failure matches ErrDenied: %v", err)
				}
			})
		})
	}
}

// TestDialRaceTimeoutError checks the typed error for a connect cut off by
// its deadline, as net gives it: wrapped, so that it matches
// context.DeadlineExceeded, with net's error still inside.
func TestDialRaceTimeoutError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		seam := newRaceSeam(t, "", "", map[string]raceAnswer{raceV4a: answerBlackHoleNet})
		d := raceDialer(seam, []string{raceV4a}, 2*time.Second, 0)
		_, err := d.DialContext(t.Context(), "tcp", raceHost+":443")
		var te *sockets.TimeoutError
		if !errors.As(err, &te) {
			t.Fatalf("error %v (%T); want a *TimeoutError", err, err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("error %v does not wrap net's error", err)
		}
		if !te.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v is not a timeout matching DeadlineExceeded", err)
		}
		if want := "sockets: dial tcp 1.1.1.1:443: i/o timeout"; err.Error() != want {
			t.Errorf("Error() = %q, want %q", err, want)
		}
	})

	// A canceled dial is not a timeout, and is not wrapped.
	synctest.Test(t, func(t *testing.T) {
		seam := newRaceSeam(t, "", "", map[string]raceAnswer{raceV4a: answerBlackHoleNet})
		d := raceDialer(seam, []string{raceV4a}, 0, 0)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		_, err := d.DialContext(ctx, "tcp", raceHost+":443")
		var te *sockets.TimeoutError
		if errors.As(err, &te) || !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("canceled: %v (%T); want context.Canceled, not a timeout", err, err)
		}
	})

	// A TimeoutError built without its Err, or nil, still works.
	for _, e := range []*sockets.TimeoutError{nil, {}} {
		_ = e.Error()
		_ = e.Unwrap()
		_ = e.Timeout()
		if errors.Is(e, context.Canceled) {
			t.Errorf("%#v matches context.Canceled", e)
		}
	}
	if got := (&sockets.TimeoutError{}).Error(); got != "sockets: <nil>" {
		t.Errorf("zero TimeoutError: %q", got)
	}
}

// TestDialRaceClosesLosers checks that when both families connect, exactly
// one connection survives: the one returned.
func TestDialRaceClosesLosers(t *testing.T) {
	t.Parallel()
	srv := startGreeter(t, "127.0.0.1:0")
	t.Run("fallback wins, the primary connects later", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			seam := newRaceSeam(t, srv.addr(), "", map[string]raceAnswer{raceV6a: answerAcceptLate, raceV4a: answerAccept})
			seam.lateBy[netip.MustParseAddrPort(raceV6a)] = 400 * time.Millisecond
			d := raceDialer(seam, []string{raceV6a, raceV4a}, 30*time.Second, 0)
			start := time.Now()
			conn, err := d.DialContext(t.Context(), "tcp", raceHost+":443")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// The dial waits for the loser, which ignores its
			// cancellation until 400 ms.
			if elapsed := time.Since(start); elapsed != 400*time.Millisecond {
				t.Errorf("returned after %v, want 400ms", elapsed)
			}
			if racePeer(t, conn) != netip.MustParseAddrPort(raceV4a) {
				t.Errorf("connected to %v, want %v", racePeer(t, conn), raceV4a)
			}
			if n := seam.openedCount(); n != 2 {
				t.Errorf("%d connections made, want 2", n)
			}
			seam.checkSettled(t, racePeer(t, conn))
			readHello(t, conn)
		})
	})
	t.Run("both connect at the same instant", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			seam := newRaceSeam(t, srv.addr(), "", map[string]raceAnswer{raceV6a: answerAcceptLate, raceV4a: answerAcceptLate})
			seam.lateBy[netip.MustParseAddrPort(raceV6a)] = 400 * time.Millisecond
			seam.lateBy[netip.MustParseAddrPort(raceV4a)] = 100 * time.Millisecond
			d := raceDialer(seam, []string{raceV6a, raceV4a}, 30*time.Second, 0)
			conn, err := d.DialContext(t.Context(), "tcp", raceHost+":443")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if n := seam.openedCount(); n != 2 {
				t.Errorf("%d connections made, want 2", n)
			}
			seam.checkSettled(t, racePeer(t, conn))
			readHello(t, conn)
		})
	})
	// In real time, with a fallback delay of 1 ns, both racers connect to
	// the loopback server nearly together, in either order.
	t.Run("real time", func(t *testing.T) {
		t.Parallel()
		srv := startGreeter(t, "127.0.0.1:0")
		for range 20 {
			seam := newRaceSeam(t, srv.addr(), "", map[string]raceAnswer{raceV6a: answerAccept, raceV4a: answerAccept})
			d := raceDialer(seam, []string{raceV6a, raceV4a}, 30*time.Second, time.Nanosecond)
			conn, err := d.DialContext(t.Context(), "tcp", raceHost+":443")
			if err != nil {
				t.Fatal(err)
			}
			seam.checkSettled(t, racePeer(t, conn))
			readHello(t, conn)
		}
	})
}

// TestDialRaceCancel checks that canceling the context mid-race ends the
// dial at once, with context.Canceled, and leaves nothing running.
func TestDialRaceCancel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		cancelAt time.Duration
		calls    []raceCall
	}{
		{"after the fallback started", time.Second, raceCalls(raceV6a, 0, raceV4a, 300*time.Millisecond)},
		{"before the fallback started", 100 * time.Millisecond, raceCalls(raceV6a, 0)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				seam := newRaceSeam(t, "", "", map[string]raceAnswer{raceV6a: answerBlackHole, raceV4a: answerBlackHole})
				d := raceDialer(seam, []string{raceV6a, raceV4a}, 0, 0)
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(c.cancelAt, cancel)
				start := time.Now()
				_, err := d.DialContext(ctx, "tcp", raceHost+":443")
				if elapsed := time.Since(start); elapsed != c.cancelAt {
					t.Errorf("returned after %v, want %v", elapsed, c.cancelAt)
				}
				if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("error %v; want context.Canceled", err)
				}
				if got := seam.attempts(); !slices.Equal(got, c.calls) {
					t.Errorf("attempts %v, want %v", got, c.calls)
				}
				seam.checkSettled(t, netip.AddrPort{})
			})
		})
	}
}

// TestDialRaceOnlyCheckedAddresses checks that refused answers never reach
// the connect step, while the race runs over the allowed ones: the seam
// fails the test for any address it was not told about.
func TestDialRaceOnlyCheckedAddresses(t *testing.T) {
	t.Parallel()
	srv := startGreeter(t, "127.0.0.1:0")
	synctest.Test(t, func(t *testing.T) {
		seam := newRaceSeam(t, srv.addr(), "", map[string]raceAnswer{raceV6a: answerBlackHole, raceV4a: answerRefuse, raceV4b: answerAccept})
		d := &sockets.Dialer{
			Resolver: newResolver(map[string][]string{raceHost: {
				"10.0.0.1",             // private (RFC 1918)
				"2606:4700:4700::1111", // raceV6a: allowed, dead
				"142.250.0.1",          // Google
				"1.1.1.1",              // raceV4a: allowed, refuses
				"127.0.0.1",            // loopback
				"fd00::1",              // ULA
				"1.0.0.1",              // raceV4b: allowed, works
			}}),
			Connect: seam.connect,
			Timeout: 30 * time.Second,
		}
		conn, err := d.DialContext(t.Context(), "tcp", raceHost+":443")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if racePeer(t, conn) != netip.MustParseAddrPort(raceV4b) {
			t.Errorf("connected to %v, want %v", racePeer(t, conn), raceV4b)
		}
		if got, want := seam.attempts(), raceCalls(raceV6a, 0, raceV4a, 300*time.Millisecond, raceV4b, 300*time.Millisecond); !slices.Equal(got, want) {
			t.Errorf("attempts %v, want %v", got, want)
		}
		seam.checkSettled(t, racePeer(t, conn))
		readHello(t, conn)
	})
}

// racePeer returns the address the seam connected c to: DialContext
// hands out the seam's connection as made.
func racePeer(t *testing.T, c net.Conn) netip.AddrPort {
	t.Helper()
	tc, ok := c.(*raceTrackedConn)
	if !ok {
		t.Fatalf("DialContext returned a %T, want the seam's connection as made", c)
	}
	return tc.addr
}

// raceEchoUDP is a UDP server on 127.0.0.1 that answers each datagram with
// "re:" and the datagram.
type raceEchoUDP struct {
	pc   *net.UDPConn
	done chan struct{}
}

func startRaceEchoUDP(t *testing.T) *raceEchoUDP {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	s := &raceEchoUDP{pc: pc, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-s.done
	})
	return s
}

func (s *raceEchoUDP) addrPort() netip.AddrPort { return s.pc.LocalAddr().(*net.UDPAddr).AddrPort() }

// raceNullConn is a connection that does nothing, at no cost.
type raceNullConn struct{ net.Conn }

func (raceNullConn) Read(p []byte) (int, error)  { return len(p), nil }
func (raceNullConn) Write(p []byte) (int, error) { return len(p), nil }
func (raceNullConn) Close() error                { return nil }

// raceUDPRoundTrip sends a datagram on c and reads the echo server's reply.
func raceUDPRoundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "re:ping" {
		t.Fatalf("read %q, %v; want the echo", buf[:n], err)
	}
}

// raceSilentDNS is a DNS server on loopback that reads every query and never
// answers, and a Go resolver (real DNS packets) that asks only it.
type raceSilentDNS struct {
	pc      net.PacketConn
	queries atomic.Int64
	done    chan struct{}

	// The resolver's connections: how many are open, and whether the
	// test has ended (no more may be made).
	mu     sync.Mutex
	cond   *sync.Cond
	open   int
	closed bool
}

func startRaceSilentDNS(t *testing.T) (*raceSilentDNS, *net.Resolver) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &raceSilentDNS{pc: pc, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go func() {
		defer close(s.done)
		buf := make([]byte, 1500)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			s.queries.Add(1)
		}
	}()
	t.Cleanup(func() {
		// Wait until the resolver has closed every connection it made:
		// then its goroutines have ended too.
		s.mu.Lock()
		s.closed = true
		for s.open > 0 {
			s.cond.Wait()
		}
		s.mu.Unlock()
		pc.Close()
		<-s.done
	})
	r := &net.Resolver{
		PreferGo: true,
		// Every query goes to the silent server, whatever server the
		// system's configuration names.
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if network != "udp" {
				return nil, errors.New("silent DNS server: udp only")
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				return nil, errors.New("silent DNS server: the test has ended")
			}
			s.open++
			s.mu.Unlock()
			var d net.Dialer
			c, err := d.DialContext(ctx, network, pc.LocalAddr().String())
			if err != nil {
				s.closedOne()
				return nil, err
			}
			// Honour ctx: when the lookup is abandoned, unblock the
			// resolver's read at once rather than at its own timeout.
			stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
			return &raceDNSConn{UDPConn: c.(*net.UDPConn), onClose: func() { stop(); s.closedOne() }}, nil
		},
	}
	return s, r
}

func (s *raceSilentDNS) closedOne() {
	s.mu.Lock()
	s.open--
	s.cond.Broadcast()
	s.mu.Unlock()
}

// raceDNSConn is the resolver's connection to the silent server; it calls
// onClose once, on the first Close. (It is a net.PacketConn, as the Go
// resolver expects of a UDP connection.)
type raceDNSConn struct {
	*net.UDPConn
	once    sync.Once
	onClose func()
}

func (c *raceDNSConn) Close() error {
	c.once.Do(c.onClose)
	return c.UDPConn.Close()
}

// TestDialLookupTimeout checks that a lookup cut off by the deadline is a
// *LookupError that is a timeout and matches context.DeadlineExceeded,
// with Go's own resolver sending real DNS packets to a server that never
// answers, and with a resolver that blocks until its context is done;
// with the deadline from Dialer.Timeout and from the context.
func TestDialLookupTimeout(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, err error) {
		t.Helper()
		var le *sockets.LookupError
		if !errors.As(err, &le) || le.Host != "silent.example" {
			t.Fatalf("error %v (%T); want a *LookupError for silent.example", err, err)
		}
		var ne net.Error
		if !isTimeout(err) || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v: Timeout %v, matches DeadlineExceeded %v; want both", err, isTimeout(err), errors.Is(err, context.DeadlineExceeded))
		}
		if errors.Is(err, sockets.ErrDenied) {
			t.Errorf("a lookup timeout matches ErrDenied: %v", err)
		}
	}
	for _, viaTimeout := range []bool{true, false} {
		name := "context deadline"
		if viaTimeout {
			name = "Dialer.Timeout"
		}
		t.Run("Go resolver/"+name, func(t *testing.T) {
			t.Parallel()
			dns, r := startRaceSilentDNS(t)
			d := &sockets.Dialer{Resolver: r, Connect: noConnect(t).connect}
			ctx := t.Context()
			if viaTimeout {
				d.Timeout = 200 * time.Millisecond
			} else {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
			}
			_, err := d.DialContext(ctx, "tcp", "silent.example:443")
			check(t, err)
			if dns.queries.Load() == 0 {
				t.Error("the resolver sent no query to the DNS server")
			}
		})
		t.Run("blocking resolver/"+name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				d := &sockets.Dialer{Resolver: blockingResolver{}, Connect: noConnect(t).connect}
				ctx := t.Context()
				if viaTimeout {
					d.Timeout = 3 * time.Second
				} else {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, 3*time.Second)
					defer cancel()
				}
				start := time.Now()
				_, err := d.DialContext(ctx, "tcp", "silent.example:443")
				if elapsed := time.Since(start); elapsed != 3*time.Second {
					t.Errorf("gave up after %v, want 3s", elapsed)
				}
				check(t, err)
			})
		})
	}
}

// raceFixedResolver answers every lookup with its addresses, in a new slice
// as a real resolver does, and records nothing.
type raceFixedResolver []netip.Addr

func (r raceFixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return slices.Clone(r), nil
}

// BenchmarkDialFirstAddressWorks measures a new connection when the first
// address works, on loopback: plain net.Dialer to the literal; the Dialer
// with the literal and with a name answering only 127.0.0.1 (one address,
// no race); and the Dialer with a name answering 127.0.0.1 and ::1 (the
// race is set up, and the fallback never starts). "lockstep/plain-vs-sockets"
// dials plain and the dual-stack name alternately in one loop and reports
// both times and the Dialer's cost in percent, so the ratio holds on a
// noisy machine; "lockstep/no-race-vs-race" does the same for the
// dual-stack name with the race off and on: what the race costs.
func BenchmarkDialFirstAddressWorks(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Wait for the client to close first (a server that closed
			// or reset at once could break a connect still completing).
			wg.Go(func() {
				io.Copy(io.Discard, c)
				c.Close()
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	pol := sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128"))
	lo4, lo6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	one := &sockets.Dialer{Policy: pol, Resolver: raceFixedResolver{lo4}}
	dual := &sockets.Dialer{Policy: pol, Resolver: raceFixedResolver{lo4, lo6}}
	byName := net.JoinHostPort("name.example", port)
	ctx := context.Background()
	var plain net.Dialer
	dialPlain := func(b *testing.B) {
		c, err := plain.DialContext(ctx, "tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	dialOutbound := func(b *testing.B, d *sockets.Dialer, address string) {
		c, err := d.DialContext(ctx, "tcp", address)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dialPlain(b)
		}
	})
	b.Run("sockets-literal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dialOutbound(b, one, addr)
		}
	})
	b.Run("sockets-name-one-family", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dialOutbound(b, one, byName)
		}
	})
	b.Run("sockets-name-dual-stack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dialOutbound(b, dual, byName)
		}
	})
	// lockstep dials with a and b alternately, each timed, and reports
	// both times per dial and b's cost over a in percent.
	lockstep := func(name, aName string, a func(*testing.B), bName string, bf func(*testing.B)) {
		b.Run("lockstep/"+name, func(b *testing.B) {
			b.ReportAllocs()
			timed := func(f func(*testing.B)) time.Duration {
				start := time.Now()
				f(b)
				return time.Since(start)
			}
			var ta, tb time.Duration
			n := 0
			for b.Loop() {
				if n%2 == 0 {
					ta += timed(a)
					tb += timed(bf)
				} else {
					tb += timed(bf)
					ta += timed(a)
				}
				n++
			}
			b.ReportMetric(float64(ta.Nanoseconds())/float64(n), aName+"-ns/dial")
			b.ReportMetric(float64(tb.Nanoseconds())/float64(n), bName+"-ns/dial")
			b.ReportMetric(100*(tb.Seconds()-ta.Seconds())/ta.Seconds(), "cost-%")
		})
	}
	noRace := &sockets.Dialer{Policy: pol, Resolver: raceFixedResolver{lo4, lo6}, FallbackDelay: -1}
	lockstep("plain-vs-sockets", "plain", dialPlain, "sockets", func(b *testing.B) { dialOutbound(b, dual, byName) })
	// The same dual-stack answers with the race off (the addresses tried
	// in turn, as before the race existed) and on.
	lockstep("no-race-vs-race", "no-race", func(b *testing.B) { dialOutbound(b, noRace, byName) }, "race", func(b *testing.B) { dialOutbound(b, dual, byName) })
}

// BenchmarkDialRaceOverhead measures what the race adds to a dial whose
// first address works, without the kernel's connect: the connect step is
// a seam returning a connection that does nothing. "one-family" is a name
// answering one IPv4 address (tried alone, as before the race existed);
// "dual-stack" answers IPv4 and IPv6 (the race is set up, the fallback
// never starts); "dual-stack-no-race" is the same with FallbackDelay -1.
func BenchmarkDialRaceOverhead(b *testing.B) {
	connect := func(context.Context, string, netip.AddrPort) (net.Conn, error) { return raceNullConn{}, nil }
	v4, v6 := netip.MustParseAddrPort(raceV4a).Addr(), netip.MustParseAddrPort(raceV6a).Addr()
	for _, c := range []struct {
		name          string
		answers       raceFixedResolver
		fallbackDelay time.Duration
	}{
		{"one-family", raceFixedResolver{v4}, 0},
		{"dual-stack", raceFixedResolver{v4, v6}, 0},
		{"dual-stack-no-race", raceFixedResolver{v4, v6}, -1},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := &sockets.Dialer{Resolver: c.answers, Connect: connect, FallbackDelay: c.fallbackDelay}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				conn, err := d.DialContext(ctx, "tcp", raceHost+":443")
				if err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
		})
	}
}
