package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
)

// Retryable reports whether a request that ended with resp or err may be
// sent again. It is the rule [Transport] follows when [Config.Retries] is
// set, offered to callers that retry on their own. It reports true only
// when all of these hold:
//
//   - req can be sent again as it is: its method is idempotent (GET, HEAD,
//     OPTIONS, TRACE, PUT, DELETE: RFC 9110, section 9.2.2), or it carries
//     an Idempotency-Key or X-Idempotency-Key header; and it has no body,
//     or req.GetBody can make a fresh copy of it;
//   - req's context is neither cancelled nor past its deadline;
//   - the outcome may be transient: a 429, 502, 503 or 504 reply, or an
//     error not known to be permanent: a connection refused, reset or
//     closed early, a failed DNS lookup, a malformed reply.
//
// Never retried, on either backend: a refusal (anything matching
// sockets.ErrDenied, urlfetch's refusals among them), an egress proxy's
// refusal or demand for credentials (a *sockets.ProxyError but for an
// unreachable proxy, a broken tunnel and a 429, 502, 503 or 504 from the
// proxy: the proxy's policy, not a passing fault of the destination), a urlfetch limit (request or response size, redirects),
// a certificate error, an invalid
// request or configuration, a cancelled context, and a deadline: anything
// matching context.DeadlineExceeded, the request context's, urlfetch's over
// one exchange ([URLFetchConfig.Deadline]) or the sockets dialer's timeout. A
// deadline is the time the caller gave the request or the connection:
// another try would spend it again, so it is final.
// Any other reply (500 and 501 among them) is final.
//
// A nil req, or a nil resp with a nil err, is not retryable.
func Retryable(req *http.Request, resp *http.Response, err error) bool {
	return req != nil && replayable(req) && req.Context().Err() == nil && transient(resp, err)
}

// replayable reports whether req may be sent more than once.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false // the body cannot be rewound
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// transient reports whether the outcome of one try may be different on the
// next.
func transient(resp *http.Response, err error) bool {
	if err != nil {
		return !permanent(err)
	}
	if resp == nil {
		return false
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Default retry waits (Config.RetryWaitMin, Config.RetryWaitMax).
const (
	defaultRetryWaitMin = 100 * time.Millisecond
	defaultRetryWaitMax = 5 * time.Second
)

// drainLimit is how much of a retried reply's body is read so that its
// connection can be reused; a longer body is cut and its connection
// closed. go-retryablehttp reads the same amount (its respReadLimit).
const drainLimit = 4 << 10

// retrier is the retry loop of a [Transport]: the settings New validated.
// Its zero value retries nothing. It is never changed after New, and so is
// safe for concurrent use.
type retrier struct {
	max              int // Config.Retries
	waitMin, waitMax time.Duration
	logger           *slog.Logger // nil: no logging
}

func newRetrier(cfg Config) (retrier, error) {
	switch {
	case cfg.Retries < 0:
		return retrier{}, errors.New("transport: Retries must not be negative")
	case cfg.RetryWaitMin < 0 || cfg.RetryWaitMax < 0:
		return retrier{}, errors.New("transport: RetryWaitMin and RetryWaitMax must not be negative")
	}
	r := retrier{max: cfg.Retries, waitMin: cfg.RetryWaitMin, waitMax: cfg.RetryWaitMax, logger: cfg.Logger}
	if r.waitMin == 0 {
		r.waitMin = defaultRetryWaitMin
	}
	if r.waitMax == 0 {
		r.waitMax = defaultRetryWaitMax
	}
	r.waitMax = max(r.waitMax, r.waitMin)
	return r, nil
}

// roundTrip sends req through next, and again while [Retryable] allows it
// and tries remain. req must be replayable.
//
// The first try sends req itself; each later one sends a shallow copy whose
// only change is a fresh body from req.GetBody, as net/http's own
// rewindBody does, so the caller's request is never changed and nothing
// (no Authorization from URL user information, no cookie, no redirect) is
// added. The last reply or error is returned as it is: a 503 stays a
// response. A retried reply's body is drained (up to drainLimit) and closed
// before the wait, so its connection can serve the next try.
//
// req's context bounds everything: a wait ends when the context is done
// (RoundTrip then returns the context's error), and a wait that would end
// after the context's deadline is not begun: the last reply or error is
// returned at once, since no further try could finish in time.
func (r *retrier) roundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	try := req
	for n := 0; ; n++ {
		resp, err := next.RoundTrip(try)
		if n == r.max || !Retryable(req, resp, err) {
			return resp, err
		}
		wait := r.backoff(n, resp)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return resp, err
		}
		again, rerr := rewind(req)
		if rerr != nil {
			r.log(ctx, req, n, 0, resp, err, rerr)
			return resp, err
		}
		r.log(ctx, req, n, wait, resp, err, nil)
		if resp != nil {
			io.CopyN(io.Discard, resp.Body, drainLimit)
			resp.Body.Close()
		}
		if !sleep(ctx, wait) {
			closeBody(again)
			return nil, ctx.Err()
		}
		try = again
	}
}

// rewind returns a copy of req for another try, with a fresh body from
// req.GetBody when req has one.
func rewind(req *http.Request) (*http.Request, error) {
	again := *req
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		again.Body = body
	}
	return &again, nil
}

// sleep waits for d, or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff returns the wait after try n (0 for the first), when that try
// ended with resp (nil after an error). Every wait lies between waitMin and
// waitMax.
//
// A Retry-After header on resp is the server's own word and is honoured,
// within those bounds. Otherwise the wait is drawn at random between
// waitMin and a ceiling that doubles with each try, waitMin*2^(n+1) capped
// at waitMax, so that clients that failed together do not all come back
// together. The ceiling is go-retryablehttp's DefaultBackoff (exponential,
// capped, safe from overflow), called without the response.
//
// The rest of go-retryablehttp does not fit. DefaultBackoff's own
// Retry-After handling returns the header's value uncapped (a server could
// hold a request for a day), accepts only one of the three HTTP-date forms
// that RFC 9110, section 5.6.7, requires a recipient to read, and gives a
// number that cannot be told apart from its exponential one, so jitter
// could not be added to one and not the other; the parser behind it is not
// exported. LinearJitterBackoff grows past its maximum (its jitter is
// multiplied by the try number) and seeds a new random source from the
// clock's nanoseconds on every call: an allocation, and the same jitter for
// calls that read the same clock value. Its retry policies match error
// text with regular expressions and retry 500; Outbound's errors are
// typed. Its client loop is an http.Client, which a RoundTripper must not
// wrap (it adds authentication, cookies and redirects).
func (r *retrier) backoff(n int, resp *http.Response) time.Duration {
	if resp != nil {
		if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			return min(max(d, r.waitMin), r.waitMax)
		}
	}
	ceiling := retryablehttp.DefaultBackoff(r.waitMin, r.waitMax, n+1, nil)
	return r.waitMin + rand.N(ceiling-r.waitMin+1)
}

// retryAfter parses a Retry-After value (RFC 9110, section 10.2.3): a
// number of seconds, or an HTTP-date in any of the forms http.ParseTime
// reads. A date in the past is a wait of zero or less.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 64); err == nil {
		const most = 1 << 32 // seconds, over a century: far above any waitMax
		return time.Duration(min(s, most)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t), true
	}
	return 0, false
}

// log reports a retry (or, with rerr, a retry given up because the body
// could not be rewound) to the configured logger, if any.
func (r *retrier) log(ctx context.Context, req *http.Request, n int, wait time.Duration, resp *http.Response, err, rerr error) {
	if r.logger == nil {
		return
	}
	u := *req.URL
	u.User = nil // no credential in a log line
	attrs := []slog.Attr{
		slog.String("method", req.Method),
		slog.String("url", u.String()),
		slog.Int("try", n+1),
	}
	if resp != nil {
		attrs = append(attrs, slog.Int("status", resp.StatusCode))
	} else {
		attrs = append(attrs, slog.Any("error", err))
	}
	if rerr != nil {
		attrs = append(attrs, slog.Any("rewind_error", rerr))
		r.logger.LogAttrs(ctx, slog.LevelWarn, "transport: not retrying: request body cannot be rewound", attrs...)
		return
	}
	attrs = append(attrs, slog.Duration("wait", wait))
	r.logger.LogAttrs(ctx, slog.LevelDebug, "transport: retrying request", attrs...)
}

// permanent reports whether err is a failure that repeating the same
// request cannot cure: every refusal, an invalid URL, method, request or
// configuration, a size limit, too many redirects, a certificate error, a
// canceled request, a deadline, and an egress proxy's refusal or demand
// for credentials. It is the one retry decision of the module.
func permanent(err error) bool {
	for _, k := range permanentErrors {
		if errors.Is(err, k) {
			return true
		}
	}
	pe, ok := errors.AsType[*sockets.ProxyError](err)
	return ok && !proxyTransient(pe)
}

var permanentErrors = []error{
	sockets.ErrDenied, tlsconf.ErrCertificate, ErrInvalidRequest,
	urlfetch.ErrInvalidURL, urlfetch.ErrInvalidMethod, urlfetch.ErrInvalidRequest,
	urlfetch.ErrPayloadTooLarge, urlfetch.ErrResponseTooLarge, urlfetch.ErrTooManyRedirects,
	urlfetch.ErrConfig,
	// Matched by urlfetch's ErrCanceled and ErrDeadlineExceeded, and by the
	// same failures reported by net/http or the sockets dialer.
	context.Canceled, context.DeadlineExceeded,
}

// proxyTransient reports whether the same dial through the egress proxy
// may succeed later: true for an unreachable proxy (but for a refused
// certificate), a broken exchange, and a refusal with status 429, 502, 503
// or 504 (the proxy is busy, or could not reach the destination: the same
// failures a direct dial may see); false for an invalid proxy URL, a
// demand for credentials and any other refusal, which the proxy's policy
// will repeat.
func proxyTransient(e *sockets.ProxyError) bool {
	switch e.Kind {
	case sockets.ProxyUnreachable:
		return !errors.Is(e.Err, tlsconf.ErrCertificate)
	case sockets.ProxyBroken:
		return true
	case sockets.ProxyRefused:
		switch e.StatusCode {
		case 429, 502, 503, 504:
			return true
		}
	}
	return false
}
