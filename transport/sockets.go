package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
)

// newSockets builds the sockets backend: a plain *http.Transport whose every
// connection goes through the sockets.Dialer of Config.Dialer (the policy
// check and the connection, as made), with TLS from tlsconf,
// keep-alive, and HTTP/2 over TLS negotiated by ALPN through
// http.Transport.Protocols. It bounds the wait for a response's headers
// and their size (Config.Sockets),
// has no other size limits and takes its other deadlines from the request
// context. Its http.Transport has no Proxy,
// which would carry connections past the destination check; an egress
// proxy (Config.Dialer.Proxy) is the dialer's, which checks first.
func newSockets(cfg Config) (*socketsTransport, error) {
	tlsCfg, err := tlsconf.Client(cfg.tlsConfig(), "h2", "http/1.1")
	if err != nil {
		return nil, err
	}
	d := cfg.Dialer // a copy
	if d.Timeout == 0 {
		d.Timeout = 30 * time.Second
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	m, err := obs.For(d.MeterProvider)
	if err != nil {
		return nil, err
	}
	return &socketsTransport{metrics: m, onRefusal: cfg.OnRefusal, Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           dialHooked(&d, cfg.OnRefusal),
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		Protocols:             &protos,
		HTTP2: &http.HTTP2Config{
			// Probe a silent connection instead of waiting on it forever.
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		},

		// A server that never answers, or answers with endless headers.
		ResponseHeaderTimeout:  cfg.responseHeaderTimeout(),  // headers.go
		MaxResponseHeaderBytes: cfg.maxResponseHeaderBytes(), // headers.go
	}}, nil
}

// socketsTransport is the sockets backend's http.Transport, with
// certificate failures reported as *tlsconf.CertificateError.
type socketsTransport struct {
	*http.Transport
	metrics   *obs.Metrics                                // the dialer's: refusals here, TLS handshakes (metrics.go)
	onRefusal func(context.Context, *sockets.DeniedError) // Config.OnRefusal, for the refusals made here
}

// dialHooked returns d's DialContext, calling hook with every refusal
// when hook is set. The refusal hook is the dial's, so that the
// *http.Transport that Install puts in http.DefaultTransport, and its
// clones, keep it.
func dialHooked(d *sockets.Dialer, hook func(context.Context, *sockets.DeniedError)) func(context.Context, string, string) (net.Conn, error) {
	if hook == nil {
		return d.DialContext
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, address)
		if de, ok := errors.AsType[*sockets.DeniedError](err); ok {
			hook(ctx, de)
		}
		return c, err
	}
}

// RoundTrip is only reached through Transport.RoundTrip, which has refused
// a nil request or URL.
func (t *socketsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if s := strings.ToLower(req.URL.Scheme); s != "http" && s != "https" {
		closeBody(req)
		err := &sockets.DeniedError{Network: "tcp", Host: req.URL.Hostname(), Rule: sockets.RuleScheme, Detail: strconv.Quote(req.URL.Scheme)}
		t.metrics.RecordRefusal(req.Context(), err)
		if t.onRefusal != nil {
			t.onRefusal(req.Context(), err)
		}
		return nil, err
	}
	resp, err := t.Transport.RoundTrip(traceTLS(t.metrics, req))
	if resp != nil {
		resp.Request = req // the caller's, not traceTLS's copy
	}
	if err != nil {
		err = tlsconf.AsCertificateError(req.URL.Hostname(), err)
	}
	return resp, err
}
