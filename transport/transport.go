package transport

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
	"go.opentelemetry.io/otel/metric"
)

// Backend names one of Outbound's two HTTP backends.
type Backend int

const (
	// URLFetch is the limited fetch service, like App Engine's URL Fetch:
	// see package [github.com/outbound-go/outbound/urlfetch]. It is the
	// zero value, and so the default.
	URLFetch Backend = iota
	// Sockets makes direct connections through [sockets.Dialer], with
	// native TLS, keep-alive and HTTP/2, each checked against the Sockets
	// API policy.
	Sockets
)

// String returns "urlfetch" or "sockets".
func (b Backend) String() string {
	switch b {
	case URLFetch:
		return "urlfetch"
	case Sockets:
		return "sockets"
	}
	return fmt.Sprintf("Backend(%d)", int(b))
}

// Config selects and configures a backend. The zero Config is valid: the
// urlfetch backend with its default rules. [New] reads a Config once and
// never changes it.
type Config struct {
	// Backend is the backend to build. The zero value is URLFetch.
	Backend Backend

	// Policy is the destination policy. It wins over Dialer's. Nil, here
	// and in Dialer, means the backend's default rules:
	// sockets.PublicPolicy() for urlfetch (Google's ranges reachable),
	// sockets.DefaultPolicy() for sockets.
	Policy *sockets.Policy

	// Resolver resolves host names. It wins over Dialer's. Nil, here and
	// in Dialer, means the system resolver.
	Resolver sockets.Resolver

	// Dialer, if set, is the template for the backend's dialer: its
	// timeouts, keep-alive, meter and Connect seam are used. The backend
	// dials with Dialer.With(Policy, Resolver) (see [sockets.Dialer.With]):
	// Policy and Resolver above win over the Dialer's own when they are
	// set, and the Dialer is copied, never changed. Both backends merge
	// the three this one way.
	Dialer *sockets.Dialer

	// Proxy, if set, is the egress proxy of either backend: an http:// or
	// https:// URL, with Basic credentials in its user information if the
	// proxy wants them ("http://user:pass@proxy.internal:3128"). It wins
	// over Dialer's Proxy. Every destination is still resolved and checked
	// here, and the proxy is asked to tunnel (HTTP CONNECT) to the checked
	// IP address, never to the name, for http:// URLs too (see
	// [sockets.Dialer.Proxy]). An https:// proxy's certificate is verified
	// with TLS below (its RootCAs, else the system's), unless Dialer has a
	// ProxyTLS of its own. Nil means direct connections; HTTP_PROXY and
	// its family are never read. [New] refuses an unusable URL with a
	// *sockets.ProxyError.
	Proxy *url.URL

	// TLS configures every TLS connection. The zero value means secure
	// defaults: TLS 1.2 or later, system roots, certificates verified.
	TLS tlsconf.Config

	// AppID is the application id the urlfetch backend appends to the
	// User-Agent. Empty means urlfetch's default. Sockets ignores it.
	AppID string

	// Deadline is the urlfetch backend's deadline over a whole exchange.
	// Zero means urlfetch's default (5 seconds). Sockets ignores it: its
	// deadlines come from the request context.
	Deadline time.Duration

	// Background lets urlfetch deadlines reach 10 minutes, as App Engine
	// allowed for tasks and cron. Sockets ignores it.
	Background bool

	// ResponseHeaderTimeout bounds how long the sockets backend waits for
	// a response's headers once the request, body included, is written,
	// as http.Transport's field of that name does: a server that takes the
	// request and never answers fails the request with a net.Error whose
	// Timeout reports true and which matches context.DeadlineExceeded (so
	// it is never retried). Zero means [DefaultResponseHeaderTimeout], 30
	// seconds; negative means no bound but the request context's. urlfetch
	// ignores it: its Deadline bounds the whole exchange.
	ResponseHeaderTimeout time.Duration

	// MaxResponseHeaderBytes limits the size of a response's headers on
	// the sockets backend, as http.Transport's field of that name does:
	// over HTTP/1 the status line and header block, over HTTP/2 the header
	// list size the client announces (SETTINGS_MAX_HEADER_LIST_SIZE). A
	// response over it fails the request with net/http's error: over
	// HTTP/1 "server response headers exceeded N bytes", the connection
	// closed; over HTTP/2 a stream error ("response header list larger
	// than advertised limit"), or a COMPRESSION_ERROR of the connection
	// for one field longer than the limit. Zero means
	// [DefaultMaxResponseHeaderBytes], 1 MiB; negative is an error.
	// urlfetch ignores it.
	MaxResponseHeaderBytes int64

	// OnStats, if set, receives the bytes each urlfetch request sent and
	// received (App Engine billed this traffic); see urlfetch.Transport's
	// OnStats. The sockets backend meters through Dialer.Meter instead.
	OnStats func(*http.Request, urlfetch.Stats)

	// Retries is how many times a failed request may be tried again, inside
	// RoundTrip. Zero means no retries. Only a request that [Retryable]
	// allows is tried again; the package doc says what is retried and what
	// never is. Negative is an error.
	Retries int

	// RetryWaitMin and RetryWaitMax bound the wait between tries: each wait
	// is at least RetryWaitMin and at most RetryWaitMax, and a Retry-After
	// header is honoured within them. Zero means 100 ms and 5 s; a
	// RetryWaitMax below RetryWaitMin means RetryWaitMin. Negative is an
	// error.
	RetryWaitMin, RetryWaitMax time.Duration

	// Logger receives the library's log lines (retries, insecure TLS
	// warnings). Nil means no retry logging; TLS warnings then go to
	// slog.Default().
	Logger *slog.Logger

	// MeterProvider receives both backends' OpenTelemetry metrics:
	// refusals by rule, DNS lookup, connect and TLS handshake durations,
	// and the bytes sent and received (the README's "Metrics" section
	// lists them; see [sockets.Metrics]). Nil means Dialer's Metrics if it
	// has some, else the global MeterProvider, otel.GetMeterProvider(),
	// which records nothing until the application sets an SDK there.
	// While nothing records, no connection is wrapped and no request is
	// traced for it.
	MeterProvider metric.MeterProvider

	// OnRefusal, if set, is called once for every request that fails with
	// a refusal, on either backend and whichever rule refused it (a dial
	// refused by the policy, a scheme, method or port rule), with the
	// request's context and the *sockets.DeniedError, for an audit log.
	// It runs in the goroutine of RoundTrip, before RoundTrip returns,
	// and must not block for long. The error's Host is the host as the
	// request wrote it; its Addr, when set, is an internal address:
	// log it, never return it to whoever chose the URL (see
	// [sockets.DeniedError.Redacted]). Nil means no hook.
	OnRefusal func(ctx context.Context, err *sockets.DeniedError)
}

// Transport is an http.RoundTripper that sends each request through one
// backend, trying it again when [Config.Retries] allows. Build one with
// [New] or [FromEnv]; the zero Transport refuses every request with
// [ErrInvalidRequest]. It is safe for concurrent use. Install it as
// http.DefaultTransport with [Install], or pass it to an http.Client.
//
// A request whose context carries a policy ([sockets.WithPolicy], one
// tenant's rules in a service that fetches URLs for many) must pass that
// policy as well as the Transport's, and is sent over connections of that
// policy's own: a Transport keeps one pool of connections per distinct
// *sockets.Policy (by pointer; the 64 most recently used, the idle
// connections of a dropped one closed), so that a connection made under one
// policy is never reused for a request under another. Make one *Policy per
// tenant and reuse it: a new *Policy per request means a new pool, and a
// new connection, per request. The *http.Transport that [Install] puts in
// http.DefaultTransport, and its clones, check a context's policy when
// they dial but keep one pool for all.
type Transport struct {
	backend Backend
	base    roundTripper // nil in the zero Transport
	retry   retrier      // zero: no retries
	tenants *tenants     // the backends of requests with a context policy (tenant.go)

	onRefusal func(context.Context, *sockets.DeniedError) // Config.OnRefusal
}

// roundTripper is what both backends are.
type roundTripper interface {
	http.RoundTripper
	CloseIdleConnections()
}

var (
	_ http.RoundTripper                   = (*Transport)(nil)
	_ interface{ CloseIdleConnections() } = (*Transport)(nil) // http.Client.CloseIdleConnections
)

// RoundTrip sends req through the backend, and again, up to Config.Retries
// times, while [Retryable] allows it. It follows the RoundTripper contract
// of net/http: a non-2xx status is not an error; req is never changed
// (a retry sends a copy with a fresh body from req.GetBody); req's body is
// closed, also on error; no authentication, cookie or redirect is added or
// followed. req's context bounds every try and every wait between them.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	if t.base == nil {
		closeBody(req)
		return nil, fmt.Errorf("%w: zero Transport: build one with New", ErrInvalidRequest)
	}
	base, err := t.baseFor(req) // tenant.go
	if err != nil {
		closeBody(req)
		return nil, err
	}
	var resp *http.Response
	if t.retry.max == 0 || !replayable(req) {
		resp, err = base.RoundTrip(req)
	} else {
		resp, err = t.retry.roundTrip(base, req)
	}
	if err != nil && t.onRefusal != nil {
		t.refused(req, err) // metrics.go
	}
	return resp, err
}

// ErrInvalidRequest is matched by the error for a request no backend can
// send: nil, or without a URL. It is never retried. It is
// urlfetch.ErrInvalidRequest, the same value, so that one sentinel matches
// an invalid request whichever backend refused it.
var ErrInvalidRequest = urlfetch.ErrInvalidRequest

// checkRequest refuses what would make net/http panic, closing the body.
func checkRequest(req *http.Request) error {
	switch {
	case req == nil:
		return fmt.Errorf("%w: nil request", ErrInvalidRequest)
	case req.URL == nil:
		closeBody(req)
		return fmt.Errorf("%w: nil URL", ErrInvalidRequest)
	}
	return nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// Backend reports which backend t is, for logs and health pages.
func (t *Transport) Backend() Backend { return t.backend }

// CloseIdleConnections closes the backend's idle keep-alive connections.
// It does not interrupt a connection in use.
func (t *Transport) CloseIdleConnections() {
	if t.base != nil {
		t.base.CloseIdleConnections()
	}
	if t.tenants != nil {
		t.tenants.closeIdle()
	}
}

// BackendOf reports the backend of rt, if rt is a [*Transport] (or wraps
// one and says so with a Backend() Backend method), or the *http.Transport
// that [Install] put in place of a sockets *Transport. Code that holds a
// *Transport calls [Transport.Backend] instead.
func BackendOf(rt http.RoundTripper) (Backend, bool) {
	if ht, ok := rt.(*http.Transport); ok && ht != nil && ht == installed.Load() {
		return Sockets, true
	}
	if b, ok := rt.(interface{ Backend() Backend }); ok {
		return b.Backend(), true
	}
	return 0, false
}

// New builds the backend cfg selects. It validates cfg once and returns an
// error for an unknown backend, negative retries or retry waits, a
// negative MaxResponseHeaderBytes, a bad TLS
// configuration (unreadable files, bad certificates, an unsupported
// minimum version), a bad urlfetch setting (a negative deadline, an app
// id that cannot go in a header) or an unusable proxy URL (a
// *sockets.ProxyError). It never reads the environment and never
// changes process-wide state.
func New(cfg Config) (*Transport, error) {
	r, err := newRetrier(cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.checkHeaderLimits(); err != nil { // headers.go
		return nil, err
	}
	if cfg.Dialer, err = cfg.proxyDialer(); err != nil { // proxy.go
		return nil, err
	}
	if cfg.Dialer, err = cfg.metricsDialer(); err != nil { // metrics.go
		return nil, err
	}
	var base roundTripper
	switch cfg.Backend {
	case URLFetch:
		base, err = newURLFetch(cfg)
	case Sockets:
		base, err = newSockets(cfg)
	default:
		return nil, fmt.Errorf("transport: unknown backend %d", int(cfg.Backend))
	}
	if err != nil {
		return nil, err
	}
	return &Transport{backend: cfg.Backend, base: base, retry: r, onRefusal: cfg.OnRefusal, tenants: newTenants(cfg)}, nil
}

// tlsConfig is cfg.TLS, logging through cfg.Logger unless it names its own.
func (cfg *Config) tlsConfig() tlsconf.Config {
	tc := cfg.TLS
	if tc.Logger == nil {
		tc.Logger = cfg.Logger
	}
	return tc
}

// Install sets http.DefaultTransport to rt and returns a function that
// restores the previous value. It is the only function in this module that
// changes process-wide state, and it does so only when called. Install and
// the restore function are not safe to call concurrently with each other
// or with code that reads http.DefaultTransport at the same moment: call
// them at start-up and shutdown.
//
// For a [*Transport] of the sockets backend, Install sets
// http.DefaultTransport to the backend's own *http.Transport, not to rt,
// so that the common idiom
//
//	t := http.DefaultTransport.(*http.Transport).Clone()
//
// works, and its clones stay safe: each keeps the checked dialer
// (DialContext, which checks every address against the policy before it
// connects, and the proxy of Config.Proxy if any), no Proxy, the TLS
// configuration from tlsconf, and the timeouts and header limits.
// What lives in rt's RoundTrip is not there: Config.Retries, one
// connection pool per context policy (the dialer still checks a
// context's policy, but connections are pooled together), the
// [RuleScheme] refusal (net/http refuses a scheme other than http and
// https itself, with its own error, before any dial), the refusal hook
// and metrics recorded there, and *tlsconf.CertificateError (certificate
// failures are crypto/tls's and crypto/x509's errors). Give the
// *Transport itself to an http.Client for those. A clone whose caller sets
// a Proxy or replaces DialContext is no longer checked. [BackendOf]
// reports Sockets for the installed *http.Transport, not for its clones.
//
// Any other rt, the urlfetch backend's *Transport among them, is
// installed as it is: urlfetch is not an http.Transport, and its limits
// (methods, ports, sizes, header rules, the deadline over the whole
// exchange) live in its RoundTrip, which an *http.Transport holding only
// its dialer would lose. With it installed,
// http.DefaultTransport.(*http.Transport) panics; code that clones
// http.DefaultTransport must use the two-value type assertion, or be given
// a transport explicitly.
func Install(rt http.RoundTripper) (restore func()) {
	prev, prevInstalled := http.DefaultTransport, installed.Load()
	if ht := installable(rt); ht != nil { // install.go
		http.DefaultTransport = ht
		installed.Store(ht)
	} else {
		http.DefaultTransport = rt
		installed.Store(nil)
	}
	return func() {
		http.DefaultTransport = prev
		installed.Store(prevInstalled)
	}
}
