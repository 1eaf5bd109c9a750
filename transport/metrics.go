package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/outbound-go/outbound/sockets"
)

// metricsDialer returns cfg.Dialer with the Metrics that both backends
// record on (see Config.MeterProvider): a copy with new Metrics on
// MeterProvider, or on the global MeterProvider when neither
// MeterProvider nor the Dialer names Metrics; the Dialer itself when it
// has Metrics and MeterProvider is nil. The caller's Dialer is never
// changed.
func (cfg *Config) metricsDialer() (*sockets.Dialer, error) {
	if cfg.MeterProvider == nil && cfg.Dialer != nil && cfg.Dialer.Metrics != nil {
		return cfg.Dialer, nil
	}
	m, err := sockets.NewMetrics(cfg.MeterProvider) // nil: the global one
	if err != nil {
		return nil, fmt.Errorf("transport: metrics: %w", err)
	}
	d := cfg.Dialer.With(nil, nil) // a copy
	d.Metrics = m
	return d, nil
}

// refused calls the OnRefusal hook when err is a refusal.
func (t *Transport) refused(req *http.Request, err error) {
	if de, ok := errors.AsType[*sockets.DeniedError](err); ok {
		t.onRefusal(req.Context(), de)
	}
}

// traceTLS returns req, or, when m records TLS handshakes and req is
// https, a shallow copy whose context times the handshake of any
// connection dialed for it (net/http makes the sockets backend's
// handshakes, and reports them only through httptrace). It costs nothing
// while m records nothing.
func traceTLS(m *sockets.Metrics, req *http.Request) *http.Request {
	ctx := req.Context()
	if !strings.EqualFold(req.URL.Scheme, "https") || !m.HandshakeEnabled(ctx) {
		return req
	}
	h := &handshakeTrace{m: m, ctx: ctx}
	return req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		TLSHandshakeStart: h.start,
		TLSHandshakeDone:  h.done,
	}))
}

// handshakeTrace times the TLS handshake of a connection dialed for one
// request. net/http calls start and then done from the goroutine that
// dials.
type handshakeTrace struct {
	m     *sockets.Metrics
	ctx   context.Context
	began time.Time
}

func (h *handshakeTrace) start() { h.began = h.m.HandshakeStart(h.ctx) }

func (h *handshakeTrace) done(_ tls.ConnectionState, err error) {
	h.m.RecordHandshake(h.ctx, h.began, err)
}
