package transport

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
)

// retrier retries requests through go-retryablehttp's client loop, with
// Outbound's rules:
//
//   - only idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or a
//     request carrying an Idempotency-Key (or X-Idempotency-Key) header are
//     retried;
//   - a policy refusal, a urlfetch limit or refusal, a certificate error and
//     a cancelled or expired context are never retried;
//   - a 429 or a 5xx reply (but 501) is retried, after Retry-After when the
//     reply has one (429 and 503), else after exponential backoff;
//   - the final reply or error is passed through unchanged: a 5xx stays a
//     response, never an error;
//   - the body is rewound with Request.GetBody for each new try, never
//     buffered whole; a body that cannot be rewound is sent once;
//   - nothing is logged unless Config.Logger is set.
type retrier struct {
	next   http.RoundTripper
	client *retryablehttp.Client
}

func newRetrier(cfg Config, next http.RoundTripper) *retrier {
	waitMin, waitMax := cfg.RetryWaitMin, cfg.RetryWaitMax
	if waitMin <= 0 {
		waitMin = 100 * time.Millisecond
	}
	if waitMax <= 0 {
		waitMax = 5 * time.Second
	}
	c := &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: next,
			// A RoundTripper never follows redirects: the caller's
			// http.Client does.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		RetryWaitMin: waitMin,
		RetryWaitMax: waitMax,
		RetryMax:     cfg.Retries,
		CheckRetry:   checkRetry,
		Backoff:      retryablehttp.DefaultBackoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		PrepareRetry: rewindBody,
	}
	if cfg.Logger != nil {
		c.Logger = cfg.Logger // *slog.Logger is a retryablehttp.LeveledLogger
	}
	return &retrier{next: next, client: c}
}

func (r *retrier) RoundTrip(req *http.Request) (*http.Response, error) {
	if !retryable(req) {
		return r.next.RoundTrip(req)
	}
	rreq, err := retryablehttp.NewRequestWithContext(req.Context(), req.Method, req.URL.String(), nil)
	if err != nil {
		return r.next.RoundTrip(req) // let the backend report the bad request
	}
	// The first try sends the caller's own body; rewindBody asks GetBody
	// for a fresh one before each later try.
	rreq.Request = req.Clone(req.Context())
	rreq.Request.RequestURI = "" // http.Client refuses server-side requests
	resp, err := r.client.Do(rreq)
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err // http.Client's wrapping, not the backend's error
	}
	return resp, err
}

// retryable reports whether req may be sent more than once.
func retryable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false // cannot rewind
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// rewindBody gives a retry a fresh body from GetBody.
func rewindBody(req *http.Request) error {
	if req.GetBody == nil || req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	b, err := req.GetBody()
	if err != nil {
		return err
	}
	req.Body = b
	return nil
}

// checkRetry decides whether a try is retried. It never retries a refusal,
// a limit, a certificate error or a context error.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	if err != nil {
		return !permanent(err), nil
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return true, nil
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return true, nil
	}
	return false, nil
}

// permanent reports errors that are not retried: refusals, limits (urlfetch's
// deadline is one of its limits, and matches context.DeadlineExceeded),
// certificate errors, and cancellation.
func permanent(err error) bool {
	return errors.Is(err, sockets.ErrDenied) ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, tlsconf.ErrCertificate) ||
		urlfetch.IsPermanent(err)
}
