package obs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/metrictest"
	"go.opentelemetry.io/otel/metric/noop"
)

// The tests of a dialer's metrics as a user sees them (DialContext with a
// MeterProvider) are package sockets' (observe_test.go) and transport's;
// these hold the instruments themselves.

// TestForShares: For builds the instruments of a MeterProvider once and
// shares them; nil is no provider, and no instruments.
func TestForShares(t *testing.T) {
	mp, _ := metrictest.NewProvider(t, ScopeName)
	a, err := For(mp)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := For(mp); b != a {
		t.Error("For built the instruments of one provider twice")
	}
	other, _ := metrictest.NewProvider(t, ScopeName)
	if b, _ := For(other); b == a {
		t.Error("two providers share instruments")
	}
	if m, err := For(nil); err != nil || m != nil {
		t.Fatalf("For(nil) = %v, %v; want no instruments", m, err)
	}
}

// TestDisabledRecordsNothing: a nil *Metrics, and the instruments of a
// provider that records nothing, record nothing, start no clock and wrap
// no connection.
func TestDisabledRecordsNothing(t *testing.T) {
	ctx := context.Background()
	noopM, err := NewMetrics(noop.NewMeterProvider())
	if err != nil {
		t.Fatal(err)
	}
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	for name, m := range map[string]*Metrics{"nil": nil, "noop": noopM} {
		if m.HandshakeEnabled(ctx) {
			t.Errorf("%s: HandshakeEnabled", name)
		}
		if !m.HandshakeStart(ctx).IsZero() || !m.LookupStart(ctx).IsZero() || !m.ConnectStart(ctx).IsZero() {
			t.Errorf("%s: a clock started", name)
		}
		if c := m.CountIO(ctx, client, "tcp"); c != client {
			t.Errorf("%s: CountIO wrapped the connection in a %T", name, c)
		}
		// None of these may panic.
		m.RecordRefusal(ctx, errors.New("x"))
		m.RecordLookup(ctx, time.Time{}, nil)
		m.RecordConnect(ctx, "tcp", netip.MustParseAddrPort("192.0.2.1:443"), time.Time{}, nil)
		m.RecordHandshake(ctx, time.Time{}, nil)
	}
}

// TestRecords: each instrument records on the SDK with its attributes, and
// never a host, address or port.
func TestRecords(t *testing.T) {
	mp, collect := metrictest.NewProvider(t, ScopeName)
	m, err := For(mp)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// A refusal, as package sockets reports one.
	saved := Refusal
	t.Cleanup(func() { Refusal = saved })
	errRefused := errors.New("refused")
	Refusal = func(err error) (string, string, bool) {
		if err == errRefused {
			return "private", "udp6", true
		}
		return "", "", false
	}
	m.RecordRefusal(ctx, errRefused)
	m.RecordRefusal(ctx, errors.New("not a refusal"))
	m.RecordRefusal(ctx, nil)

	m.RecordLookup(ctx, m.LookupStart(ctx), nil)
	m.RecordLookup(ctx, m.LookupStart(ctx), ErrNoAddresses)
	m.RecordConnect(ctx, "tcp", netip.MustParseAddrPort("192.0.2.1:443"), m.ConnectStart(ctx), nil)
	m.RecordConnect(ctx, "udp", netip.MustParseAddrPort("[2001:db8::1]:53"), m.ConnectStart(ctx), nil)
	m.RecordConnect(ctx, "tcp4", netip.MustParseAddrPort("[::ffff:192.0.2.1]:443"), m.ConnectStart(ctx), &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	if !m.HandshakeEnabled(ctx) {
		t.Error("HandshakeEnabled is false with the SDK")
	}
	m.RecordHandshake(ctx, m.HandshakeStart(ctx), nil)
	m.RecordHandshake(ctx, m.HandshakeStart(ctx), context.DeadlineExceeded)

	client, server := net.Pipe()
	defer server.Close()
	c := m.CountIO(ctx, client, "udp4")
	go func() {
		buf := make([]byte, 5)
		io.ReadFull(server, buf)
		server.Write([]byte("abc"))
	}()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	got := collect()
	want := map[string]map[string]int64{
		MetricRefusals: {"network.transport=udp,outbound.rule=private": 1},
		MetricDNSLookupDuration: {
			"":                          1,
			"error.type=host_not_found": 1,
		},
		MetricConnectDuration: {
			"network.transport=tcp,network.type=ipv4":                               1,
			"network.transport=udp,network.type=ipv6":                               1,
			"error.type=connection_refused,network.transport=tcp,network.type=ipv4": 1,
		},
		MetricTLSDuration: {
			"":                   1,
			"error.type=timeout": 1,
		},
		MetricIO: {
			"network.io.direction=transmit,network.transport=udp": 5,
			"network.io.direction=receive,network.transport=udp":  3,
		},
	}
	for name, w := range want {
		if fmt.Sprint(got[name]) != fmt.Sprint(w) {
			t.Errorf("%s = %v, want %v", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("instruments %v, want %d", got, len(want))
	}
}

// TestErrorTypes: the error.type of each failure, from a small fixed set.
func TestErrorTypes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("step: %w", err) }
	for _, c := range []struct {
		name string
		f    func(error) string
		err  error
		want string
	}{
		{"lookup canceled", lookupErrorType, wrap(context.Canceled), "canceled"},
		{"lookup deadline", lookupErrorType, wrap(context.DeadlineExceeded), "timeout"},
		{"lookup DNS timeout", lookupErrorType, &net.DNSError{Err: "i/o timeout", IsTimeout: true}, "timeout"},
		{"lookup not found", lookupErrorType, &net.DNSError{Err: "no such host", IsNotFound: true}, "host_not_found"},
		{"lookup no answer", lookupErrorType, wrap(ErrNoAddresses), "host_not_found"},
		{"lookup temporary", lookupErrorType, &net.DNSError{Err: "server misbehaving", IsTemporary: true}, "try_again"},
		{"lookup other DNS", lookupErrorType, &net.DNSError{Err: "refused"}, "no_recovery"},
		{"lookup other", lookupErrorType, errors.New("x"), "_OTHER"},
		{"connect refused", connectErrorType, os.NewSyscallError("connect", syscall.ECONNREFUSED), "connection_refused"},
		{"connect reset", connectErrorType, os.NewSyscallError("connect", syscall.ECONNRESET), "connection_reset"},
		{"connect net unreachable", connectErrorType, os.NewSyscallError("connect", syscall.ENETUNREACH), "unreachable"},
		{"connect host unreachable", connectErrorType, os.NewSyscallError("connect", syscall.EHOSTUNREACH), "unreachable"},
		{"connect socket deadline", connectErrorType, &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, "timeout"},
		{"connect other", connectErrorType, errors.New("x"), "_OTHER"},
		{"handshake certificate", handshakeErrorType, &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "certificate"},
		{"handshake hostname", handshakeErrorType, wrap(x509.HostnameError{Host: "x"}), "certificate"},
		{"handshake not TLS", handshakeErrorType, tls.RecordHeaderError{Msg: "not TLS"}, "not_tls"},
		{"handshake alert", handshakeErrorType, tls.AlertError(40), "tls_alert"},
		{"handshake other", handshakeErrorType, io.ErrUnexpectedEOF, "_OTHER"},
	} {
		if got := c.f(c.err); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}

	// The proxy and the policy, as package sockets reports them.
	savedProxy, savedRefusal := IsProxy, Refusal
	t.Cleanup(func() { IsProxy, Refusal = savedProxy, savedRefusal })
	errProxy, errRefused := errors.New("proxy"), errors.New("refused")
	IsProxy = func(err error) bool { return errors.Is(err, errProxy) }
	Refusal = func(err error) (string, string, bool) { return "loopback", "tcp", errors.Is(err, errRefused) }
	if got := connectErrorType(wrap(errProxy)); got != "proxy" {
		t.Errorf("a proxy failure: %q, want proxy", got)
	}
	if got := connectErrorType(wrap(errRefused)); got != "loopback" {
		t.Errorf("a refused connect: %q, want the rule's code", got)
	}
}
