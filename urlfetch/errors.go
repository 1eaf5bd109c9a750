package urlfetch

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
)

// kind is the type of the sentinel errors: a fixed message and the more
// general errors it also matches, as App Engine's Python error classes had
// parents ([ErrPayloadTooLarge] is an [ErrInvalidURL], [ErrDNS] an
// [ErrDownload]) and as some are Go's own errors too
// (context.DeadlineExceeded for [ErrDeadlineExceeded]).
type kind struct {
	text    string  // without the "urlfetch: " prefix
	parents []error // the errors errors.Is also matches; none for most
}

func (k *kind) Error() string   { return "urlfetch: " + k.text }
func (k *kind) Unwrap() []error { return k.parents }

// The sentinel errors. Every error a [Transport] returns, from RoundTrip or
// from a response body, is an [*Error] whose Kind is one of them, so callers
// branch with errors.Is(err, urlfetch.ErrPayloadTooLarge) and the like.
//
// They keep the relations of App Engine's error classes
// (google/appengine/api/urlfetch_errors.py): [ErrPayloadTooLarge] also
// matches [ErrInvalidURL] (PayloadTooLargeError is an InvalidURLError), and
// [ErrDNS], [ErrConnectionClosed], [ErrMalformedReply],
// [ErrTooManyRedirects] and [ErrDeadlineExceeded] also match [ErrDownload]
// (their classes are DownloadErrors), so that code ported from
// "except urlfetch.DownloadError:" reads errors.Is(err, urlfetch.ErrDownload).
var (
	// ErrInvalidURL: the URL is missing, relative, malformed, longer than
	// [MaxURLLength], has user information (a login or password, which
	// App Engine did not allow), or is refused by the scheme or port rule;
	// the error of a refusal also matches sockets.ErrDenied and holds a
	// *sockets.DeniedError whose Rule is [sockets.RuleScheme], [sockets.RulePort] or, for
	// the ports the sockets policy refuses whatever the address (0 written
	// otherwise than ":0", such as ":00", which is the default port; 25;
	// 21), the same rule as there (sockets.RulePort0, RuleSMTP, RuleFTP).
	ErrInvalidURL error = &kind{text: "invalid url"}

	// ErrInvalidMethod: the method is not GET, POST, HEAD, PUT, DELETE or
	// PATCH. The error also matches sockets.ErrDenied and holds a
	// *sockets.DeniedError whose Rule is [sockets.RuleMethod].
	ErrInvalidMethod error = &kind{text: "invalid method"}

	// ErrInvalidRequest: the request is nil, carries a header name or value
	// that cannot be sent, has a ContentLength its body does not match, or
	// its body failed to read. transport.ErrInvalidRequest is the same
	// value.
	ErrInvalidRequest error = &kind{text: "invalid request"}

	// ErrPayloadTooLarge: the request body is longer than
	// [MaxRequestBody]. Nothing was sent. It also matches [ErrInvalidURL],
	// as App Engine's PayloadTooLargeError is an InvalidURLError.
	ErrPayloadTooLarge error = &kind{text: "payload too large", parents: []error{ErrInvalidURL}}

	// ErrResponseTooLarge: the response body is longer than
	// [MaxResponseBody]. The body ends with it after exactly
	// MaxResponseBody bytes or, with [Transport.StrictResponseLimit],
	// RoundTrip fails with it.
	ErrResponseTooLarge error = &kind{text: "response too large (truncated)"}

	// ErrDeadlineExceeded: the exchange did not end before its deadline
	// (see [Transport.Deadline]) or the request context's. It also matches
	// context.DeadlineExceeded and [ErrDownload], and the [*Error] is a
	// timeout: its Timeout method reports true. Every [*Error] that is a
	// timeout matches it, also a lookup that timed out (see [ErrDNS]).
	ErrDeadlineExceeded error = &kind{text: "deadline exceeded", parents: []error{ErrDownload, context.DeadlineExceeded}}

	// ErrCanceled: the request context was canceled. It also matches
	// context.Canceled.
	ErrCanceled error = &kind{text: "canceled", parents: []error{context.Canceled}}

	// ErrDNS: the host name could not be resolved. Err holds the
	// *sockets.LookupError. It also matches [ErrDownload]. A lookup that
	// timed out (the resolver's own timeout, the dialer's, or the
	// exchange's deadline while the lookup was in progress) is a timeout
	// too: the [*Error]'s Timeout method reports true, and it matches
	// [ErrDeadlineExceeded] and context.DeadlineExceeded as well as ErrDNS.
	ErrDNS error = &kind{text: "dns lookup failed", parents: []error{ErrDownload}}

	// ErrConnectionClosed: no connection could be made to an allowed
	// address, or the connection was reset or closed before the whole
	// reply arrived. It also matches [ErrDownload].
	ErrConnectionClosed error = &kind{text: "connection closed", parents: []error{ErrDownload}}

	// ErrMalformedReply: the server's reply is not valid HTTP/1.x, or it
	// has a status of 600 or more. (A redirect status without a Location
	// header is a response.) It also matches [ErrDownload].
	ErrMalformedReply error = &kind{text: "malformed reply", parents: []error{ErrDownload}}

	// ErrTooManyRedirects: a client made by [NewClient] was redirected more
	// than [MaxRedirects] times. It also matches [ErrDownload].
	ErrTooManyRedirects error = &kind{text: "too many redirects", parents: []error{ErrDownload}}

	// ErrDownload is App Engine's DownloadError: a request that passed
	// every rule could not be fetched. No [*Error] has it as its Kind; it
	// is the parent that [ErrDNS], [ErrConnectionClosed],
	// [ErrMalformedReply], [ErrTooManyRedirects] and [ErrDeadlineExceeded]
	// match, as their Python classes were subclasses of DownloadError.
	// Refusals, invalid requests, size limits and certificate errors do
	// not match it.
	ErrDownload error = &kind{text: "download error"}

	// ErrConfig: the [Transport]'s configuration is invalid (a negative
	// Deadline, an AppID that cannot go in a header, a TLS configuration
	// that tlsconf.Client refuses). [Transport.Validate] returns it, as an
	// [*Error] that names no request, and every RoundTrip fails with it,
	// with the same cause (Err).
	ErrConfig error = &kind{text: "invalid configuration"}
)

// Error is the error of every failed fetch: an invalid or refused request,
// a failed exchange, or a response body that ended abnormally. It says what
// kind of failure it is (Kind, one of the sentinel errors such as
// [ErrDeadlineExceeded]), which request failed, and why (Err).
//
// errors.Is(err, Kind) holds, and so does errors.Is or errors.As for
// anything in Err's chain. Timeout reports whether the exchange ran out of
// time (the deadline was exceeded, or the lookup of the host name timed
// out). Kind is one of this package's sentinel errors, sockets.ErrDenied
// for a refusal (Err is then the *sockets.DeniedError), or
// tlsconf.ErrCertificate for a TLS failure (Err is then the
// *tlsconf.CertificateError).
type Error struct {
	// Kind is the sentinel error for the kind of failure.
	Kind error

	// Method is the request method ("GET" when the request said "").
	Method string

	// URL is the request URL without its user information, so that no
	// credential ends up in a log. Empty when the request had no URL.
	URL string

	// Err is the cause: a *sockets.DeniedError (every refusal), a size
	// limit's error, a *sockets.LookupError, a *tlsconf.CertificateError,
	// or the error net/http or the network reported. It may be nil when
	// Kind says it all.
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
	b.WriteString(kindText(e.Kind))
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "urlfetch: "))
	}
	return b.String()
}

// kindText returns the words for a Kind in an [Error]'s message.
func kindText(k error) string {
	switch k {
	case nil:
		return ""
	case sockets.ErrDenied:
		return "refused"
	case tlsconf.ErrCertificate:
		return "certificate error"
	}
	if k, ok := k.(*kind); ok {
		return k.text
	}
	return strings.TrimPrefix(k.Error(), "urlfetch: ")
}

// Unwrap returns Kind and Err (when not nil), so that errors.Is and
// errors.As look at both.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Timeout reports whether the exchange ran out of time: its Kind is
// [ErrDeadlineExceeded], or it is [ErrDNS] and the lookup timed out (Err is
// a timeout: it matches context.DeadlineExceeded or has a Timeout method
// that reports true, as a *net.DNSError with IsTimeout does).
func (e *Error) Timeout() bool {
	switch e.Kind {
	case ErrDeadlineExceeded:
		return true
	case ErrDNS:
		return timedOut(e.Err)
	}
	return false
}

// Is reports whether e is a timeout (see [Error.Timeout]) and target is
// [ErrDeadlineExceeded] or context.DeadlineExceeded, so that a lookup that
// timed out matches both, as well as [ErrDNS]. Every other match comes
// from Kind and Err, through Unwrap.
func (e *Error) Is(target error) bool {
	return (target == ErrDeadlineExceeded || target == context.DeadlineExceeded) && e.Timeout()
}

// timedOut reports whether err is a timeout: it matches
// context.DeadlineExceeded, or an error in its chain has a Timeout method
// that reports true.
func timedOut(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// limitError reports a size limit of the fetch service that a request or a
// response went over. It is not a refusal (it does not match
// sockets.ErrDenied): no rule refused the request, and a smaller one
// passes.
type limitError struct {
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
func (e *limitError) Error() string {
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
