package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
)

// Class is what kind of failure an error of either backend is: the one
// small set a caller branches on, from [Classify].
type Class int

const (
	// Other is any error not in another class (a connection refused or
	// reset, a malformed reply, a canceled request), and nil.
	Other Class = iota
	// Refused is a refusal of the destination policy or of a backend's
	// rules (a *sockets.DeniedError): final, never to be retried. Tell
	// the user the destination is not allowed.
	Refused
	// Timeout is a deadline: the request context's, urlfetch's over the
	// exchange, the dialer's or the response-header timeout.
	Timeout
	// DNS is a failed name lookup.
	DNS
	// Certificate is a TLS failure: the server's certificate was refused,
	// or the server does not speak TLS as it should.
	Certificate
	// Limit is a urlfetch limit: the request or response body too large,
	// too many redirects, an invalid URL, method or request.
	Limit
	// Proxy is a failure of the egress proxy (a *sockets.ProxyError).
	Proxy
)

// String returns the class's name in lower case: "other", "refused",
// "timeout", "dns", "certificate", "limit" or "proxy".
func (c Class) String() string {
	switch c {
	case Refused:
		return "refused"
	case Timeout:
		return "timeout"
	case DNS:
		return "dns"
	case Certificate:
		return "certificate"
	case Limit:
		return "limit"
	case Proxy:
		return "proxy"
	}
	return "other"
}

// Classify returns the class of err, an error of either backend, of a
// Transport, or of an http.Client or retry library around one (they wrap
// it). The first class that matches wins, in this order: Refused,
// Certificate, Limit, Proxy, Timeout, DNS; anything else, nil included,
// is Other. A refusal is never a timeout, even though it ends a request
// at once, and a lookup that timed out is a Timeout.
func Classify(err error) Class {
	if err == nil {
		return Other
	}
	switch {
	case errors.Is(err, sockets.ErrDenied):
		return Refused
	case isCertificate(err):
		return Certificate
	case errors.Is(err, urlfetch.ErrPayloadTooLarge), errors.Is(err, urlfetch.ErrResponseTooLarge),
		errors.Is(err, urlfetch.ErrTooManyRedirects), errors.Is(err, urlfetch.ErrInvalidURL),
		errors.Is(err, urlfetch.ErrInvalidMethod), errors.Is(err, urlfetch.ErrInvalidRequest):
		return Limit
	case errors.Is(err, sockets.ErrProxy):
		return Proxy
	case isTimeout(err):
		return Timeout
	case isDNS(err):
		return DNS
	}
	return Other
}

// isCertificate reports whether err is a certificate failure, as tlsconf
// reports it or as crypto/tls and crypto/x509 do (the *http.Transport
// that Install puts in place returns theirs).
func isCertificate(err error) bool {
	if errors.Is(err, tlsconf.ErrCertificate) {
		return true
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// isTimeout reports whether err is a deadline.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// isDNS reports whether err is a failed lookup.
func isDNS(err error) bool {
	var (
		lookup *sockets.LookupError
		dns    *net.DNSError
	)
	return errors.As(err, &lookup) || errors.As(err, &dns) || errors.Is(err, urlfetch.ErrDNS)
}

// CheckRetry is a retry policy for github.com/hashicorp/go-retryablehttp
// (its Client.CheckRetry) over a Transport of either backend. It never
// retries a refusal, a urlfetch limit (sizes, redirects, an invalid URL,
// method or request), a certificate error, an invalid configuration or a
// canceled context; anything else it leaves to retryablehttp's own
// DefaultRetryPolicy (which retries connection errors, 429 and 5xx but
// 501). retryablehttp's default policy retries a refusal, five times
// over fifteen seconds: never use it over this library.
//
//	rc := retryablehttp.NewClient()
//	rc.HTTPClient = &http.Client{Transport: rt}
//	rc.CheckRetry = transport.CheckRetry
//
// When it stops on an error it returns a nil error, so that the client
// returns the request's own error, which errors.As and [Classify] can
// inspect.
func CheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if err != nil {
		switch Classify(err) {
		case Refused, Limit, Certificate:
			return false, nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, urlfetch.ErrConfig) {
			return false, nil
		}
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}
