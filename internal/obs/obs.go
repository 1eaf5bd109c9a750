// Package obs is the module's OpenTelemetry instrumentation: the
// instruments both backends record, built once per MeterProvider. It uses
// the OpenTelemetry metric API only; the application brings the SDK. It is
// internal: the instrument names are documented in package transport.
package obs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope (the meter name) of every
// instrument this module records.
const ScopeName = "github.com/outbound-go/outbound"

// The names of the instruments a [Metrics] records.
// MetricDNSLookupDuration is OpenTelemetry's own dns.lookup.duration; the
// others have no semantic convention and carry the outbound prefix.
const (
	MetricRefusals          = "outbound.refusals"               // counter, {refusal}
	MetricDNSLookupDuration = "dns.lookup.duration"             // histogram, s
	MetricConnectDuration   = "outbound.connect.duration"       // histogram, s
	MetricTLSDuration       = "outbound.tls.handshake.duration" // histogram, s
	MetricIO                = "outbound.io"                     // counter, By
)

// The attribute keys the instruments use, after OpenTelemetry's semantic
// conventions where one exists (error.type, network.transport,
// network.type, network.io.direction).
const (
	AttrRule        = attribute.Key("outbound.rule")        // a Rule's Code
	AttrErrorType   = attribute.Key("error.type")           // why a lookup, connect or handshake failed
	AttrTransport   = attribute.Key("network.transport")    // "tcp" or "udp"
	AttrNetworkType = attribute.Key("network.type")         // "ipv4" or "ipv6"
	AttrDirection   = attribute.Key("network.io.direction") // "transmit" or "receive"
)

// Refusal reports whether err holds a refusal of the destination policy,
// and if so its rule's code and its network. Package sockets sets it when
// it is initialised (obs cannot import it: sockets imports obs); until
// then nothing is a refusal.
var Refusal = func(error) (rule, network string, ok bool) { return "", "", false }

// IsProxy reports whether err holds a failure of the egress proxy. Package
// sockets sets it when it is initialised.
var IsProxy = func(error) bool { return false }

// ErrNoAddresses is a lookup that succeeded with no answer.
var ErrNoAddresses = errors.New("no addresses")

// durationBuckets are the bucket boundaries, in seconds, that
// OpenTelemetry's HTTP and DNS conventions advise for durations.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Metrics records a dialer's work as OpenTelemetry metrics: refusals by
// rule, the duration of each name lookup and connect attempt, and the
// bytes its checked connections move; and, for the HTTP clients that make
// them, the duration of TLS handshakes ([Metrics.RecordHandshake]) and
// refusals made before a dial ([Metrics.RecordRefusal]). [For] builds the
// instruments once per MeterProvider. Package transport's documentation
// lists the instruments.
//
// Every attribute has a small, fixed set of values: no host name, address
// or port is recorded. A nil *Metrics records nothing. A Metrics is safe
// for concurrent use.
type Metrics struct {
	refusals  metric.Int64Counter
	lookup    metric.Float64Histogram
	connect   metric.Float64Histogram
	handshake metric.Float64Histogram
	io        metric.Int64Counter

	// Attribute sets built once, so that recording a success allocates
	// nothing here: [transport][family] for connects, [transport][dir]
	// for bytes.
	connectOK [2][2]metric.MeasurementOption
	ioOpt     [2][2]metric.MeasurementOption
}

// cache holds the Metrics of each comparable MeterProvider [For] was
// given, so that dialers configured with the same provider (a value in a
// struct, copied freely) share one set of instruments.
var cache sync.Map // metric.MeterProvider -> *Metrics

// For returns the instruments on mp, built on first use and shared after.
// A nil mp means none: a no-op provider, which records nothing and costs
// nothing. The error is the provider's, if it
// refuses an instrument; a failed build is not kept, so the next call
// tries again.
func For(mp metric.MeterProvider) (*Metrics, error) {
	if mp == nil {
		return nil, nil // a nil *Metrics records nothing
	}
	if !reflect.TypeOf(mp).Comparable() {
		return NewMetrics(mp)
	}
	if m, ok := cache.Load(mp); ok {
		return m.(*Metrics), nil
	}
	m, err := NewMetrics(mp)
	if err != nil {
		return nil, err
	}
	got, _ := cache.LoadOrStore(mp, m)
	return got.(*Metrics), nil
}

// NewMetrics creates the instruments on the meter [ScopeName] of mp. The
// error is the provider's, if it refuses an instrument.
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	meter := mp.Meter(ScopeName)
	m := new(Metrics)
	var errs [5]error
	m.refusals, errs[0] = meter.Int64Counter(MetricRefusals,
		metric.WithUnit("{refusal}"),
		metric.WithDescription("Connections and requests refused by the destination policy, by rule."))
	m.lookup, errs[1] = meter.Float64Histogram(MetricDNSLookupDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Measures the time taken to perform a DNS lookup."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	m.connect, errs[2] = meter.Float64Histogram(MetricConnectDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of each connect attempt to an address the policy allowed."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	m.handshake, errs[3] = meter.Float64Histogram(MetricTLSDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of the TLS handshakes of outbound connections."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	m.io, errs[4] = meter.Int64Counter(MetricIO,
		metric.WithUnit("By"),
		metric.WithDescription("Bytes sent and received over checked connections."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	for t, tv := range [2]string{"tcp", "udp"} {
		for f, fv := range [2]string{"ipv4", "ipv6"} {
			m.connectOK[t][f] = metric.WithAttributeSet(attribute.NewSet(AttrTransport.String(tv), AttrNetworkType.String(fv)))
		}
		for dir, dv := range [2]string{"transmit", "receive"} {
			m.ioOpt[t][dir] = metric.WithAttributeSet(attribute.NewSet(AttrTransport.String(tv), AttrDirection.String(dv)))
		}
	}
	return m, nil
}

// transportIndex is 0 for TCP networks and 1 for UDP ones.
func transportIndex(network string) int {
	if strings.HasPrefix(network, "udp") {
		return 1
	}
	return 0
}

// transportName is "udp" for UDP networks and "tcp" for any other.
func transportName(network string) string {
	if strings.HasPrefix(network, "udp") {
		return "udp"
	}
	return "tcp"
}

// seconds is the time since start, in seconds.
func seconds(start time.Time) float64 { return time.Since(start).Seconds() }

// RecordRefusal counts err on outbound.refusals, with its rule's code
// (outbound.rule) and network.transport, if err is a refusal. A Dialer
// counts the refusals of its own dials; a client that refuses a request
// before dialing (a scheme, method or port rule) counts that refusal
// here, once. A nil m or err records nothing.
func (m *Metrics) RecordRefusal(ctx context.Context, err error) {
	if m == nil || err == nil || !m.refusals.Enabled(ctx) {
		return
	}
	rule, network, ok := Refusal(err)
	if !ok {
		return
	}
	m.refusals.Add(ctx, 1, metric.WithAttributes(AttrRule.String(rule), AttrTransport.String(transportName(network))))
}

// HandshakeEnabled reports whether m records TLS handshakes: false for a
// nil m, and while the MeterProvider records nothing. A client that must
// set up something to time a handshake checks it first.
func (m *Metrics) HandshakeEnabled(ctx context.Context) bool {
	return m != nil && m.handshake.Enabled(ctx)
}

// HandshakeStart returns the time a TLS handshake starts, for
// [Metrics.RecordHandshake], or the zero time when m records no
// handshakes (nil, or disabled), which costs nothing to pass on.
func (m *Metrics) HandshakeStart(ctx context.Context) time.Time {
	if m == nil || !m.handshake.Enabled(ctx) {
		return time.Time{}
	}
	return time.Now()
}

// RecordHandshake records the duration of a TLS handshake that started at
// start (from [Metrics.HandshakeStart]) on outbound.tls.handshake.duration,
// with error.type when err is not nil: "timeout", "canceled",
// "certificate" for a certificate that failed verification, or the Go
// type of the error. A zero start records nothing.
func (m *Metrics) RecordHandshake(ctx context.Context, start time.Time, err error) {
	if m == nil || start.IsZero() {
		return
	}
	d := seconds(start)
	if err == nil {
		m.handshake.Record(ctx, d)
		return
	}
	m.handshake.Record(ctx, d, metric.WithAttributes(AttrErrorType.String(handshakeErrorType(err))))
}

// LookupStart is HandshakeStart for a name lookup.
func (m *Metrics) LookupStart(ctx context.Context) time.Time {
	if m == nil || !m.lookup.Enabled(ctx) {
		return time.Time{}
	}
	return time.Now()
}

// RecordLookup records a lookup that started at start and failed with
// err, or succeeded.
func (m *Metrics) RecordLookup(ctx context.Context, start time.Time, err error) {
	if m == nil || start.IsZero() {
		return
	}
	d := seconds(start)
	if err == nil {
		m.lookup.Record(ctx, d)
		return
	}
	m.lookup.Record(ctx, d, metric.WithAttributes(AttrErrorType.String(lookupErrorType(err))))
}

// ConnectStart is HandshakeStart for a connect attempt.
func (m *Metrics) ConnectStart(ctx context.Context) time.Time {
	if m == nil || !m.connect.Enabled(ctx) {
		return time.Time{}
	}
	return time.Now()
}

// RecordConnect records a connect attempt to ap over network that started
// at start.
func (m *Metrics) RecordConnect(ctx context.Context, network string, ap netip.AddrPort, start time.Time, err error) {
	if m == nil || start.IsZero() {
		return
	}
	d := seconds(start)
	t, f := transportIndex(network), 0
	if !ap.Addr().Unmap().Is4() {
		f = 1
	}
	if err == nil {
		m.connect.Record(ctx, d, m.connectOK[t][f])
		return
	}
	m.connect.Record(ctx, d, metric.WithAttributes(
		AttrTransport.String(transportName(network)),
		AttrNetworkType.String([2]string{"ipv4", "ipv6"}[f]),
		AttrErrorType.String(connectErrorType(err))))
}

// CountIO returns c wrapped so that its bytes add to outbound.io, or c
// itself when m records no bytes.
func (m *Metrics) CountIO(ctx context.Context, c net.Conn, network string) net.Conn {
	if m == nil || !m.io.Enabled(ctx) {
		return c
	}
	t := transportIndex(network)
	return &ioConn{Conn: c, counter: m.io, tx: m.ioOpt[t][0], rx: m.ioOpt[t][1]}
}

// ioConn adds the bytes of each Read and Write to outbound.io. Every other
// method is the connection's own.
type ioConn struct {
	net.Conn
	counter metric.Int64Counter
	tx, rx  metric.AddOption
}

func (c *ioConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.counter.Add(context.Background(), int64(n), c.rx)
	}
	return n, err
}

func (c *ioConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.counter.Add(context.Background(), int64(n), c.tx)
	}
	return n, err
}

// commonErrorType is error.type for the failures every step shares, or "".
func commonErrorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	if rule, _, ok := Refusal(err); ok {
		return rule
	}
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return "timeout"
	}
	return ""
}

// lookupErrorType is error.type for a failed lookup: OpenTelemetry's
// getaddrinfo-style codes where they apply.
func lookupErrorType(err error) string {
	if s := commonErrorType(err); s != "" {
		return s
	}
	if errors.Is(err, ErrNoAddresses) {
		return "host_not_found"
	}
	if dns, ok := errors.AsType[*net.DNSError](err); ok {
		switch {
		case dns.IsNotFound:
			return "host_not_found"
		case dns.IsTemporary:
			return "try_again"
		}
		return "no_recovery"
	}
	return "_OTHER"
}

// connectErrorType is error.type for a failed connect attempt.
func connectErrorType(err error) string {
	if s := commonErrorType(err); s != "" {
		return s
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection_reset"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "unreachable"
	}
	if IsProxy(err) {
		return "proxy"
	}
	return "_OTHER"
}

// handshakeErrorType is error.type for a failed TLS handshake:
// "certificate" for a certificate that failed verification, "not_tls" for
// a peer that does not speak TLS, "tls_alert" for an alert from the peer.
func handshakeErrorType(err error) string {
	if s := commonErrorType(err); s != "" {
		return s
	}
	switch {
	case isType[*tls.CertificateVerificationError](err),
		isType[x509.UnknownAuthorityError](err),
		isType[x509.HostnameError](err),
		isType[x509.CertificateInvalidError](err):
		return "certificate"
	case isType[tls.RecordHeaderError](err):
		return "not_tls"
	case isType[tls.AlertError](err):
		return "tls_alert"
	}
	return "_OTHER"
}

// isType reports whether err's chain holds an E.
func isType[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}
