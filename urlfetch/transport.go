package urlfetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
)

// The limits of the fetch service, as App Engine's URL Fetch set them.
const (
	// MaxRequestBody is the largest request body sent: 10 MiB.
	MaxRequestBody = 10 << 20

	// MaxResponseBody is the largest response body delivered: 32 MiB.
	MaxResponseBody = 32 << 20

	// MaxURLLength is the longest URL accepted, in bytes of its string
	// form: 10,240.
	MaxURLLength = 10240

	// DefaultDeadline is the deadline of an exchange when
	// [Transport.Deadline] is zero.
	DefaultDeadline = 5 * time.Second

	// MaxDeadline is the longest deadline of an exchange, unless
	// [Transport.Background] is set.
	MaxDeadline = 60 * time.Second

	// MaxBackgroundDeadline is the longest deadline of an exchange made for
	// background work (tasks, cron), when [Transport.Background] is set.
	MaxBackgroundDeadline = 10 * time.Minute
)

// Transport is an [http.RoundTripper] that behaves like App Engine's URL
// Fetch service: every request is checked against the service's rules
// before anything is sent, every connection goes through a
// [sockets.Dialer] that allows public destinations only, and every exchange
// is bounded in time and size. See the package documentation for the
// rules.
//
// The zero Transport is ready to use. A Transport is safe for concurrent
// use by multiple goroutines. It builds its connection pool on first use,
// from its fields, which must not be changed after that; a Transport must
// not be copied after first use. Reuse one Transport rather than making one
// per request, so that connections are kept alive.
type Transport struct {
	// Dialer makes the connections: its Policy decides which
	// destinations may be reached, its Resolver resolves host names, its
	// Proxy (if any) tunnels them, its MeterProvider receives the
	// OpenTelemetry metrics of the Transport's dials, TLS handshakes,
	// bytes and refusals, and its Connect seam lets a test reach a
	// "public" address on loopback. The Transport dials with a copy. A nil
	// Dialer.Policy means sockets.PublicPolicy(): the never-public rule
	// of the sockets backend, with Google's ranges reachable, as through
	// App Engine's URL Fetch. A test widens it, for example with
	// sockets.PublicPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32")).
	// The scheme, method, port and size rules hold whatever the policy.
	// The deadline bounds every dial, whatever Dialer.Timeout says.
	Dialer sockets.Dialer

	// TLS configures https: certificates are verified against the system
	// roots unless TLS.RootCAs says otherwise, and verification is skipped
	// only with TLS.InsecureSkipVerify, the explicit, named option. The zero
	// Config verifies. The configuration is built once, by tlsconf.Client,
	// on first use; only HTTP/1.1 is offered (see [Stats]).
	TLS tlsconf.Config

	// AppID is the application id written in the User-Agent (see the
	// package documentation), as App Engine printed it, with its partition
	// prefix if it has one ("s~my-app"). It may hold letters, digits and
	// the characters "-_.:~". Empty means "unknown".
	AppID string

	// Deadline bounds each exchange: connecting, sending the request,
	// receiving the reply and reading its body. Zero means
	// [DefaultDeadline] (5 seconds). A value above the maximum,
	// [MaxDeadline] (60 seconds) or [MaxBackgroundDeadline] (10 minutes)
	// when Background is set, is clamped to that maximum, as App Engine
	// ended any fetch there. A negative value is an invalid configuration
	// ([ErrConfig]). A shorter deadline of the request's context wins.
	Deadline time.Duration

	// Background raises the maximum Deadline to 10 minutes, for background
	// work (tasks, cron). It does not change the default: zero Deadline is
	// still 5 seconds.
	Background bool

	// StrictResponseLimit, if true, makes a response longer than
	// [MaxResponseBody] an error of RoundTrip ([ErrResponseTooLarge])
	// instead of a body cut at the limit. A response whose length is not
	// announced (chunked, or compressed and decompressed on the way) is
	// then read in full, up to the limit, before RoundTrip returns. False
	// means the body is delivered up to the limit and its last Read
	// returns ErrResponseTooLarge.
	StrictResponseLimit bool

	// OnStats, if not nil, is called once for every RoundTrip of a non-nil
	// request, when the exchange ends: when RoundTrip fails, when the
	// response body is read to its end, fails, or is closed, or at the
	// deadline, whichever comes first. It receives
	// the request as given to RoundTrip and the bytes the exchange moved
	// (see [Stats]). It may be called from any goroutine and concurrently,
	// and must not block for long.
	OnStats func(req *http.Request, s Stats)

	once sync.Once
	b    *backend
	err  *Error // a bad configuration: Kind ErrConfig, no request
}

var _ http.RoundTripper = (*Transport)(nil)

// backend is what a Transport builds on first use.
type backend struct {
	rt          *http.Transport
	dialer      *sockets.Dialer
	metrics     *obs.Metrics // the dialer's MeterProvider's: refusals before a dial, TLS handshakes
	tls         *tls.Config
	ua          string   // App Engine's User-Agent, appended to the application's
	uaValue     []string // {ua}, the header value of a request with no User-Agent of its own
	deadline    time.Duration
	dialTimeout time.Duration
	strict      bool
}

var publicPolicy = sync.OnceValue(sockets.PublicPolicy)

// appID returns the application id: "unknown" for "".
func (t *Transport) appID() string {
	if t.AppID != "" {
		return t.AppID
	}
	return "unknown"
}

// maxDeadline returns the longest deadline allowed.
func (t *Transport) maxDeadline() time.Duration {
	if t.Background {
		return MaxBackgroundDeadline
	}
	return MaxDeadline
}

// deadline returns the effective deadline of an exchange.
func (t *Transport) deadline() (time.Duration, error) {
	switch d := t.Deadline; {
	case d < 0:
		return 0, fmt.Errorf("urlfetch: negative deadline %v", d)
	case d == 0:
		return DefaultDeadline, nil
	case d > t.maxDeadline():
		return t.maxDeadline(), nil
	default:
		return d, nil
	}
}

// dialer returns a copy of the Dialer with URL Fetch's policy,
// sockets.PublicPolicy(), when it names none.
func (t *Transport) dialer() *sockets.Dialer {
	d := t.Dialer
	if d.Policy == nil {
		d.Policy = publicPolicy()
	}
	return &d
}

// Validate checks t's configuration (deadline, app id, TLS settings) and
// builds its connection pool, as the first RoundTrip would. If the
// configuration is bad, it returns an [*Error] that matches [ErrConfig],
// names no request, and holds the cause; every RoundTrip then fails with
// an *Error of the same Kind and the same Err, for its request. Calling it
// is optional.
func (t *Transport) Validate() error {
	if _, err := t.backend(); err != nil {
		return err
	}
	return nil
}

// backend returns the backend, building it on first use, or the error of a
// bad configuration.
func (t *Transport) backend() (*backend, *Error) {
	t.once.Do(func() {
		b, err := t.build()
		if err != nil {
			t.err = &Error{Kind: ErrConfig, Err: err}
			return
		}
		t.b = b
	})
	return t.b, t.err
}

func (t *Transport) build() (*backend, error) {
	deadline, err := t.deadline()
	if err != nil {
		return nil, err
	}
	appID := t.appID()
	if !validAppID(appID) {
		return nil, fmt.Errorf("urlfetch: app id %q may hold only letters, digits and \"-_.:~\"", appID)
	}
	// HTTP/1.1 only: one exchange at a time per connection, so that the
	// bytes on the wire can be counted per request (see Stats).
	tc, err := tlsconf.Client(t.TLS, "http/1.1")
	if err != nil {
		return nil, err
	}
	d := t.dialer()
	d.Resolver = lookupTracker{d.Resolver}
	m, err := obs.For(d.MeterProvider)
	if err != nil {
		return nil, err
	}
	ua := "AppEngine-Google; (+http://code.google.com/appengine; appid: " + appID + ")"
	b := &backend{
		dialer:      d,
		metrics:     m,
		tls:         tc,
		ua:          ua,
		uaValue:     []string{ua},
		deadline:    deadline,
		dialTimeout: deadline,
		strict:      t.StrictResponseLimit,
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	b.rt = &http.Transport{
		Proxy:                 nil, // a proxy would bypass the destination check
		DialContext:           b.dial,
		DialTLSContext:        b.dialTLS,
		Protocols:             &protos,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16, // net/http's 2 would make concurrent exchanges dial, then close, connection after connection
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return b, nil
}

// validAppID reports whether id may go in the User-Agent: App Engine ids
// are letters, digits and hyphens, with "s~"-style and "domain.com:"
// prefixes.
func validAppID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '~') {
			return false
		}
	}
	return true
}

// CloseIdleConnections closes the connections that are kept alive but not
// in use. It does not interrupt exchanges in progress.
func (t *Transport) CloseIdleConnections() {
	if b, err := t.backend(); err == nil {
		b.rt.CloseIdleConnections()
	}
}

// RoundTrip makes one exchange: it checks req against the rules of the
// fetch service, sends it, and returns the reply. It follows no redirect
// (see [NewClient] for a client that does). A reply with any HTTP status
// is a response, not an error, a redirect status without a Location header
// included, as App Engine's service returned it when not following, but
// for a status of 600 or more, which App Engine took for malformed: it is
// an error matching [ErrMalformedReply]. The response's Status is written
// from its code (see the package documentation).
//
// RoundTrip never changes req, and always closes req.Body, also on error.
// Every error, from RoundTrip or from reading the response body, is an
// [*Error]. The caller must close the response body (or read it to its
// end); the exchange, its deadline and its connection last until then, or
// until the deadline.
//
// A request body of unknown length is read ahead, up to the request limit,
// by a goroutine that ends when the body's Read returns; a body whose Read
// can block must return once it is closed, as readers of pipes and
// connections do.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req == nil {
		return nil, &Error{Kind: ErrInvalidRequest, Err: errors.New("nil request")}
	}
	ex := &exchange{req: req, method: req.Method, onStats: t.OnStats}
	if ex.method == "" {
		ex.method = http.MethodGet
	}
	if req.URL != nil {
		ex.url = req.URL
		ex.host = req.URL.Hostname()
	}
	b, cfgErr := t.backend()
	if cfgErr != nil {
		closeBody(req)
		return nil, ex.fail(ErrConfig, cfgErr.Err)
	}
	out, rb, err := b.prepare(ex, req)
	if err != nil {
		// A refusal made before any dial; the dialer counts its own.
		b.metrics.RecordRefusal(req.Context(), err)
		return nil, err
	}
	if ex.pastDeadline() {
		// Spent preparing (reading a request body of unknown length):
		// nothing is sent.
		closeBody(out)
		return nil, ex.fail(ErrDeadlineExceeded, context.DeadlineExceeded)
	}
	ex.arm(b.rt, out)
	resp, err := b.rt.RoundTrip(out)
	if err != nil {
		return nil, ex.failRT(err, rb)
	}
	return b.respond(ex, req, resp)
}

// lookupTracker is the dialer's resolver: it counts, on the exchange that
// started a dial, the lookups in progress, so that an exchange whose
// deadline passes during a lookup reports a lookup that timed out
// (net/http returns only the context's error then, not the dial's).
type lookupTracker struct{ r sockets.Resolver }

func (l lookupTracker) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if ex, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
		ex.lookups.Add(1)
		defer ex.lookups.Add(-1)
	}
	r := l.r
	if r == nil {
		r = net.DefaultResolver // what a sockets.Dialer uses for nil
	}
	return r.LookupNetIP(ctx, network, host)
}

// dialError marks an error of a dial: it never comes from the reply.
type dialError struct {
	err error
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial connects through the sockets dialer and counts the traffic. The
// connection is the one the dialer made, in one wrapper, meteredConn, which
// counts the bytes for Stats and notes a broken connection.
func (b *backend) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := b.dialContext(ctx)
	defer cancel()
	c, err := b.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	return &meteredConn{Conn: c}, nil
}

// dialContext bounds a dial: by the deadline of the exchange that started
// it, which waits on it (see exchange.start), or by the deadline's length.
// net/http lets a dial run on after its request has ended, for the pool's
// sake, and does not pass the request context's deadline on.
func (b *backend) dialContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ex, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
		return context.WithDeadline(ctx, ex.deadline)
	}
	return context.WithTimeout(ctx, b.dialTimeout)
}

// dialTLS connects through the sockets dialer and makes the TLS handshake
// with tlsconf, for the host of addr.
func (b *backend) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := b.dialContext(ctx)
	defer cancel()
	c, err := b.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	mc := &meteredConn{Conn: c}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		mc.Close()
		return nil, &dialError{err: err}
	}
	start := b.metrics.HandshakeStart(ctx)
	tc, err := tlsconf.Handshake(ctx, mc, b.tls, host)
	b.metrics.RecordHandshake(ctx, start, err)
	if err != nil {
		// The failed handshake's bytes count for the exchange that dialed.
		if ex, ok := ctx.Value(exchangeKey{}).(*exchange); ok {
			mc.setOwner(ex)
		}
		return nil, &dialError{err: handshakeError(ctx, host, err)}
	}
	return tc, nil
}

// handshakeError returns the error of a TLS handshake with host that
// failed with err: a *tlsconf.CertificateError for any failure of TLS
// itself (a reply that is not TLS, no common version or application
// protocol, an alert, a refused certificate), as App Engine took any SSL
// error but a timeout for a certificate error
// (google/appengine/api/urlfetch_stub.py, _RetrieveURL: "except
// _fancy_urllib_SSLError", DEADLINE_EXCEEDED "if 'timed out' in
// e.message else SSL_CERTIFICATE_ERROR"). A timeout, a cancel, and a
// connection the peer closed or reset are returned as they are: they
// fail the exchange or the network, not TLS, and are classified as such.
func handshakeError(ctx context.Context, host string, err error) error {
	if _, ok := errors.AsType[*tlsconf.CertificateError](err); ok {
		return err
	}
	if ctx.Err() != nil || timedOut(err) || errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed) || closedConn(err) {
		return err
	}
	return &tlsconf.CertificateError{Host: host, Reason: "TLS handshake failed: " + err.Error(), Err: err}
}
