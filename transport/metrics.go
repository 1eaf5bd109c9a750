package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
)

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
func traceTLS(m *obs.Metrics, req *http.Request) *http.Request {
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
	m     *obs.Metrics
	ctx   context.Context
	began time.Time
}

func (h *handshakeTrace) start() { h.began = h.m.HandshakeStart(h.ctx) }

func (h *handshakeTrace) done(_ tls.ConnectionState, err error) {
	h.m.RecordHandshake(h.ctx, h.began, err)
}
