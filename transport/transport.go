package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
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
// never changes it. Each setting has one place: what both backends use is
// a field of Config or of its Dialer; what one backend alone uses is in
// the sub-struct named for it.
type Config struct {
	// Backend is the backend to build. The zero value is URLFetch.
	Backend Backend

	// Dialer makes every connection of either backend: its Policy (nil
	// means the backend's default: sockets.PublicPolicy() for urlfetch,
	// with Google's ranges reachable, sockets.DefaultPolicy() for
	// sockets), its Resolver (nil: the system's), its timeouts (on the
	// sockets backend a zero Timeout means 30 seconds; urlfetch's deadline
	// bounds its dials), its egress Proxy (an https:// proxy's
	// certificate is verified with TLS below unless ProxyTLS is set), its
	// MeterProvider (both backends' OpenTelemetry metrics: see the package
	// documentation) and its Connect seam for tests. New refuses an
	// unusable Proxy URL with a *sockets.ProxyError.
	Dialer sockets.Dialer

	// TLS configures every TLS connection. The zero value means secure
	// defaults: TLS 1.2 or later, system roots, certificates verified.
	TLS tlsconf.Config

	// URLFetch holds the settings of the urlfetch backend alone.
	URLFetch URLFetchConfig

	// Sockets holds the settings of the sockets backend alone.
	Sockets SocketsConfig

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

// URLFetchConfig holds the settings only the urlfetch backend uses.
type URLFetchConfig struct {
	// AppID is the application id appended to the User-Agent. Empty means
	// urlfetch's default.
	AppID string

	// Deadline bounds a whole exchange, body included. Zero means
	// urlfetch's default (5 seconds); negative is an error.
	Deadline time.Duration

	// Background lets deadlines reach 10 minutes, as App Engine allowed
	// for tasks and cron.
	Background bool

	// OnStats, if set, receives the bytes each request sent and received
	// (App Engine billed this traffic); see urlfetch.Transport's OnStats.
	OnStats func(*http.Request, urlfetch.Stats)
}

// SocketsConfig holds the settings only the sockets backend uses.
type SocketsConfig struct {
	// ResponseHeaderTimeout bounds how long the backend waits for a
	// response's headers once the request, body included, is written, as
	// http.Transport's field of that name does: a server that takes the
	// request and never answers fails the request with an error whose
	// Timeout reports true and which matches context.DeadlineExceeded (so
	// it is never retried). Zero or negative means no bound but the
	// request context's, as in net/http: the bound costs every request a
	// timer. [SafeClient] sets 10 seconds.
	ResponseHeaderTimeout time.Duration

	// MaxResponseHeaderBytes limits the size of a response's headers, as
	// http.Transport's field of that name does: over HTTP/1 the status
	// line and header block, over HTTP/2 the header list size the client
	// announces (SETTINGS_MAX_HEADER_LIST_SIZE). A response over it fails
	// the request with net/http's error: over HTTP/1 "server response
	// headers exceeded N bytes", the connection closed; over HTTP/2 a
	// stream error ("response header list larger than advertised limit"),
	// or a COMPRESSION_ERROR of the connection for one field longer than
	// the limit. Zero means 1 MiB, net/http's server-side limit (a tenth
	// of its client default); negative is an error.
	MaxResponseHeaderBytes int64
}

// Transport is an http.RoundTripper that sends each request through one
// backend, trying it again when [Config.Retries] allows. Build one with
// [New] or [FromEnv]; the zero Transport refuses every request with
// [ErrInvalidRequest]. It is safe for concurrent use. Install it as
// http.DefaultTransport with [Install], or pass it to an http.Client.
//
// A service that fetches URLs for many tenants, each with rules of its
// own, derives one Transport per tenant with [Transport.ForPolicy]: the
// tenant's policy is then part of the Transport it holds, with a
// connection pool of its own, so that a connection made under one
// tenant's policy is never reused for another's.
type Transport struct {
	backend Backend
	cfg     Config       // as validated by New, for ForPolicy
	base    roundTripper // nil in the zero Transport
	retry   retrier      // zero: no retries

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
	var resp *http.Response
	var err error
	if t.retry.max == 0 || !replayable(req) {
		resp, err = t.base.RoundTrip(req)
	} else {
		resp, err = t.retry.roundTrip(t.base, req)
	}
	if err != nil && t.onRefusal != nil && t.backend == URLFetch {
		// The sockets backend calls the hook where it refuses (sockets.go).
		t.refused(req, err) // metrics.go
	}
	return resp, err
}

// ErrInvalidRequest is matched by the error for a request no backend can
// send: nil, or without a URL, or sent through the zero Transport. It is
// never retried.
var ErrInvalidRequest = errors.New("transport: invalid request")

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
}

// BackendOf reports the backend of rt: a [*Transport], the *http.Transport
// that [Install] put in place of a sockets *Transport, or a wrapper around
// either that says so, by a Backend() Backend method of its own or by an
// Unwrap() http.RoundTripper method, whose chain BackendOf follows (at most
// 16 wrappers deep). It reports false for anything else, among them a
// wrapper that hides what it wraps: otelhttp's Transport (v0.72) has no
// Unwrap, so code that wraps a Transport in it keeps the *Transport and
// calls [Transport.Backend]. The clones of the installed *http.Transport
// are not recognised either.
func BackendOf(rt http.RoundTripper) (Backend, bool) {
	for range 16 {
		if ht, ok := rt.(*http.Transport); ok && ht != nil && ht == installed.Load() {
			return Sockets, true
		}
		if b, ok := rt.(interface{ Backend() Backend }); ok {
			return b.Backend(), true
		}
		u, ok := rt.(interface{ Unwrap() http.RoundTripper })
		if !ok {
			break
		}
		rt = u.Unwrap()
	}
	return 0, false
}

// New builds the backend cfg selects. It validates cfg once and returns an
// error for an unknown backend, negative retries or retry waits, a
// negative MaxResponseHeaderBytes, a bad TLS configuration (unreadable
// files, bad certificates, an unsupported minimum version), a bad
// urlfetch setting (a negative deadline, an app id that cannot go in a
// header), a policy with an entry it cannot use ([sockets.Policy.Err]),
// an unusable proxy URL (a *sockets.ProxyError) or a MeterProvider that
// refuses an instrument. It never reads the
// environment and never changes process-wide state.
func New(cfg Config) (*Transport, error) {
	r, err := newRetrier(cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.checkHeaderLimits(); err != nil { // headers.go
		return nil, err
	}
	if err := cfg.Dialer.Policy.Err(); err != nil {
		return nil, err
	}
	if err := cfg.setProxyTLS(); err != nil { // proxy.go
		return nil, err
	}
	if _, err := obs.For(cfg.Dialer.MeterProvider); err != nil {
		return nil, fmt.Errorf("transport: metrics: %w", err)
	}
	if cfg.TLS.SessionCache == nil {
		// One cache for this Transport and those ForPolicy derives.
		cfg.TLS.SessionCache = tls.NewLRUClientSessionCache(0)
	}
	base, err := cfg.newBase()
	if err != nil {
		return nil, err
	}
	return &Transport{backend: cfg.Backend, cfg: cfg, base: base, retry: r, onRefusal: cfg.OnRefusal}, nil
}

// newBase builds the backend of cfg, validated by New.
func (cfg *Config) newBase() (roundTripper, error) {
	switch cfg.Backend {
	case URLFetch:
		return newURLFetch(*cfg)
	case Sockets:
		return newSockets(*cfg)
	}
	return nil, fmt.Errorf("transport: unknown backend %d", int(cfg.Backend))
}

// ForPolicy returns a Transport that is t with p as its destination
// policy: the same backend and settings, the same TLS session cache, and a
// connection pool of its own, so that no connection made under one policy
// is ever reused under another. It is how a service that fetches URLs for
// several tenants gives each its rules: derive one Transport per tenant
// when the tenant's policy is made, and keep it (each holds its idle
// connections until CloseIdleConnections or their idle timeout). p
// replaces the policy of t's Config.Dialer; a nil p means the backend's
// default policy. A policy with an entry it cannot use
// ([sockets.Policy.Err]) is an error. t is not changed.
func (t *Transport) ForPolicy(p *sockets.Policy) (*Transport, error) {
	if t.base == nil {
		return nil, fmt.Errorf("%w: zero Transport: build one with New", ErrInvalidRequest)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	cfg := t.cfg
	cfg.Dialer.Policy = p
	base, err := cfg.newBase()
	if err != nil {
		return nil, err
	}
	d := *t
	d.cfg, d.base = cfg, base
	return &d, nil
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
// connects, and the egress proxy of Config.Dialer if any), with the
// refusal hook (Config.OnRefusal) and the dial's metrics (refusals,
// lookups, connects, bytes), which belong to the dialer; no Proxy; the TLS
// configuration from tlsconf; and the timeouts and header limits. What
// lives only in rt's RoundTrip is not kept: Config.Retries, the TLS
// handshake durations, and *tlsconf.CertificateError (certificate
// failures are then crypto/tls's and crypto/x509's own errors, which
// [Classify] still calls Certificate). A clone whose caller sets a Proxy
// or replaces DialContext is no longer checked. [BackendOf] reports
// Sockets for the installed *http.Transport, not for its clones.
//
// A library that cloned http.DefaultTransport before Install (at init,
// say) keeps the unchecked transport it cloned: call Install at the start
// of main, before such libraries make their clients, or give them rt.
//
// Install the *Transport itself, not a wrapper around it (otelhttp's, a
// retry library's): a wrapper is installed as it is, and the idiom above
// then panics. Wrap at the client instead.
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
