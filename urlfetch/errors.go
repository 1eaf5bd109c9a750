package urlfetch

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
)

// kind is the type of the sentinel errors: a fixed message and, for some,
// a more general error it also matches (context.DeadlineExceeded for
// [ErrDeadlineExceeded], for example).
type kind struct {
	text   string // without the "urlfetch: " prefix
	parent error  // nil, or the error errors.Is also matches
}

func (k *kind) Error() string { return "urlfetch: " + k.text }
func (k *kind) Unwrap() error { return k.parent }

// The sentinel errors. Every error a [Transport] returns, from RoundTrip or
// from a response body, is an [*Error] whose Kind is one of them, so callers
// branch with errors.Is(err, urlfetch.ErrPayloadTooLarge) and the like.
var (
	// ErrInvalidURL: the URL is missing, relative, malformed, longer than
	// [MaxURLLength], or refused by the scheme or port rule; the error of a
	// refusal also matches [ErrRefused] and holds a [*RefusedError].
	ErrInvalidURL error = &kind{text: "invalid url"}

	// ErrInvalidMethod: the method is not GET, POST, HEAD, PUT, DELETE or
	// PATCH. The error also matches [ErrRefused] and holds a
	// [*RefusedError].
	ErrInvalidMethod error = &kind{text: "invalid method"}

	// ErrInvalidRequest: the request is nil, carries a header name or value
	// that cannot be sent, has a ContentLength its body does not match, or
	// its body failed to read.
	ErrInvalidRequest error = &kind{text: "invalid request"}

	// ErrPayloadTooLarge: the request body is longer than
	// [MaxRequestBody]. Nothing was sent.
	ErrPayloadTooLarge error = &kind{text: "payload too large"}

	// ErrResponseTooLarge: the response body is longer than
	// [MaxResponseBody]. The body ends with it after exactly
	// MaxResponseBody bytes or, with [Transport.StrictResponseLimit],
	// RoundTrip fails with it.
	ErrResponseTooLarge error = &kind{text: "response too large (truncated)"}

	// ErrDeadlineExceeded: the exchange did not end before its deadline
	// (see [Transport.Deadline]) or the request context's. It also matches
	// context.DeadlineExceeded, and the [*Error] is a net.Error whose
	// Timeout method reports true.
	ErrDeadlineExceeded error = &kind{text: "deadline exceeded", parent: context.DeadlineExceeded}

	// ErrCanceled: the request context was canceled. It also matches
	// context.Canceled.
	ErrCanceled error = &kind{text: "canceled", parent: context.Canceled}

	// ErrDNS: the host name could not be resolved. Err holds the
	// *sockets.LookupError.
	ErrDNS error = &kind{text: "dns lookup failed"}

	// ErrConnectionClosed: no connection could be made to an allowed
	// address, or the connection was reset or closed before the whole
	// reply arrived.
	ErrConnectionClosed error = &kind{text: "connection closed"}

	// ErrMalformedReply: the server's reply is not valid HTTP/1.x (or, on
	// https, not valid TLS).
	ErrMalformedReply error = &kind{text: "malformed reply"}

	// ErrTooManyRedirects: a client made by [NewClient] was redirected more
	// than [MaxRedirects] times.
	ErrTooManyRedirects error = &kind{text: "too many redirects"}

	// ErrCertificate: the server's certificate was refused (or the server
	// refused the client's). It also matches tlsconf.ErrCertificate, and
	// errors.As finds the *tlsconf.CertificateError.
	ErrCertificate error = &kind{text: "certificate error", parent: tlsconf.ErrCertificate}

	// ErrRefused is matched by every refusal: a scheme, method or port
	// refused by a rule of the fetch service ([*RefusedError], which also
	// matches [ErrInvalidURL] or [ErrInvalidMethod]) and a destination
	// refused by the policy (a *sockets.DeniedError, reachable with
	// errors.As). It also matches sockets.ErrDenied. A refusal is final:
	// nothing was sent, and a retry would be refused again.
	ErrRefused error = &kind{text: "refused", parent: sockets.ErrDenied}

	// ErrConfig: the [Transport]'s configuration is invalid (a negative
	// Deadline, an AppID that cannot go in a header, a TLS configuration
	// that tlsconf.Client refuses). Every RoundTrip fails with it.
	ErrConfig error = &kind{text: "invalid configuration"}
)

// Error is the error of every failed fetch: an invalid or refused request,
// a failed exchange, or a response body that ended abnormally. It says what
// kind of failure it is (Kind, one of the sentinel errors such as
// [ErrDeadlineExceeded]), which request failed, and why (Err).
//
// errors.Is(err, Kind) holds, and so does errors.Is or errors.As for
// anything in Err's chain. An Error is a net.Error: Timeout reports whether
// the deadline was exceeded.
type Error struct {
	// Kind is the sentinel error for the kind of failure.
	Kind error

	// Method is the request method ("GET" when the request said "").
	Method string

	// URL is the request URL without its user information, so that no
	// credential ends up in a log. Empty when the request had no URL.
	URL string

	// Err is the cause: a [*RefusedError], a [*LimitError], a
	// *sockets.DeniedError, a *sockets.LookupError, a
	// *tlsconf.CertificateError, or the error net/http or the network
	// reported. It may be nil when Kind says it all.
	Err error
}

// Error returns a message such as
//
//	urlfetch: POST http://example.com/upload: payload too large: request body of 11534336 bytes is over the limit of 10485760
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("urlfetch: ")
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteByte(' ')
	}
	if e.URL != "" {
		b.WriteString(e.URL)
		b.WriteString(": ")
	}
	if k, ok := e.Kind.(*kind); ok {
		b.WriteString(k.text)
	} else if e.Kind != nil {
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "urlfetch: "))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "urlfetch: "))
	}
	return b.String()
}

// Unwrap returns Kind and Err (when not nil), so that errors.Is and
// errors.As look at both.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Timeout reports whether the deadline was exceeded.
func (e *Error) Timeout() bool { return e.Kind == ErrDeadlineExceeded }

// Temporary reports the same as Timeout; it exists so that an *Error is a
// net.Error.
func (e *Error) Temporary() bool { return e.Timeout() }

var _ net.Error = (*Error)(nil)

// Rule names a rule of the fetch service that refused a request, in words a
// person can read in a log line.
type Rule string

// The rules a [Transport] applies before anything is sent. They hold
// whatever destination policy the Transport uses.
const (
	RuleScheme Rule = "scheme not allowed (only http and https)"
	RuleMethod Rule = "method not allowed (only GET, POST, HEAD, PUT, DELETE, PATCH)"
	RulePort   Rule = "port not allowed (only 80-90, 440-450, 1024-65535)"
)

// RefusedError reports a request refused by a rule of the fetch service
// before anything was sent: its scheme, method or port. It matches
// [ErrRefused] and sockets.ErrDenied through errors.Is. A refusal is final.
type RefusedError struct {
	Rule  Rule   // the rule that refused
	Value string // what it refused: the scheme, the method or the port, as written
}

// Error returns a message such as
//
//	urlfetch: port "1000" refused: port not allowed (only 80-90, 440-450, 1024-65535)
func (e *RefusedError) Error() string {
	what := "value"
	switch e.Rule {
	case RuleScheme:
		what = "scheme"
	case RuleMethod:
		what = "method"
	case RulePort:
		what = "port"
	}
	return "urlfetch: " + what + " " + strconv.Quote(e.Value) + " refused: " + string(e.Rule)
}

// Unwrap returns [ErrRefused].
func (e *RefusedError) Unwrap() error { return ErrRefused }

// LimitError reports a size limit of the fetch service that a request or a
// response went over.
type LimitError struct {
	// What names the thing measured: "url", "request body" or
	// "response body".
	What string

	// Limit is the largest size allowed, in bytes (characters for the URL).
	Limit int64

	// Size is the size found, or -1 when only "more than Limit" is known
	// (a body of unknown length, which was not read further).
	Size int64
}

// Error returns a message such as
//
//	urlfetch: request body of 11534336 bytes is over the limit of 10485760
func (e *LimitError) Error() string {
	unit := " bytes"
	if e.What == "url" {
		unit = " characters"
	}
	size := "more than " + strconv.FormatInt(e.Limit, 10) + unit
	if e.Size >= 0 {
		size = strconv.FormatInt(e.Size, 10) + unit
	}
	return "urlfetch: " + e.What + " of " + size + " is over the limit of " + strconv.FormatInt(e.Limit, 10)
}

// IsPermanent reports whether err is a failure that repeating the same
// request cannot cure, so that a retry layer must not retry it: every
// refusal (a [*RefusedError] or a policy denial, anything matching
// [ErrRefused] or sockets.ErrDenied), an invalid URL, method or request, a
// size limit ([ErrPayloadTooLarge], [ErrResponseTooLarge]), too many
// redirects, a certificate error, an invalid configuration, and a canceled
// request. A deadline, a DNS failure, a closed connection and a malformed
// reply may be transient: IsPermanent reports false for them, for nil, and
// for errors that do not come from this package.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	for _, k := range permanent {
		if errors.Is(err, k) {
			return true
		}
	}
	return errors.Is(err, sockets.ErrDenied)
}

var permanent = []error{
	ErrRefused, ErrInvalidURL, ErrInvalidMethod, ErrInvalidRequest,
	ErrPayloadTooLarge, ErrResponseTooLarge, ErrTooManyRedirects,
	ErrCertificate, ErrConfig, ErrCanceled,
}
