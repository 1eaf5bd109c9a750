// Package transport is Outbound's front door: it builds a [*Transport], the
// http.RoundTripper of the backend a deployment asks for, urlfetch or
// sockets, explicitly with [New] or from the environment with [FromEnv].
//
//	rt, err := transport.FromEnv() // GAE_USE_SOCKETS_HTTPLIB present: sockets
//	if err != nil {
//		return err
//	}
//	restore := transport.Install(rt) // http.DefaultTransport, until restore()
//	defer restore()
//
// The switch follows App Engine: the variable GAE_USE_SOCKETS_HTTPLIB selects
// sockets when it is present, whatever its value, the empty string included;
// only an unset variable keeps urlfetch. The environment is read only when
// the caller asks ([FromEnv], [ConfigFromEnv]); [Env] lists every variable.
//
// The urlfetch backend is [github.com/outbound-go/outbound/urlfetch]'s
// Transport: a bounded fetch with URL Fetch's methods, ports, sizes,
// deadline and header rules, to public destinations (Google's ranges
// included). The sockets backend is an http.Transport whose every
// connection goes through a [sockets.Dialer] with the Sockets API policy,
// TLS from [github.com/outbound-go/outbound/tlsconf], keep-alive, and HTTP/2
// negotiated by ALPN; it streams bodies with no size limit of its own and
// takes its deadlines from the request context, but for bounds on a
// response's headers: 30 seconds to arrive and 1 MiB by default
// (Config.ResponseHeaderTimeout and MaxResponseHeaderBytes). [Install] of
// the sockets backend puts its *http.Transport in http.DefaultTransport,
// so that code which clones http.DefaultTransport gets the checked dialer
// too. Neither backend ever uses a proxy from the environment, which would
// carry connections past the destination check, and every redirect hop is
// checked again because every connection is.
//
// # Errors and metering
//
// Refusals are *[sockets.DeniedError] values on both backends; on the
// sockets backend a URL scheme other than http and https is refused with
// [RuleScheme]. A nil request or URL matches [ErrInvalidRequest]. [New]
// validates the whole configuration up front. urlfetch reports the bytes
// of each request through Config.OnStats; the sockets backend counts per
// connection and per host through the Meter of Config.Dialer.
//
// # Retries
//
// Config.Retries turns on retries, made by a loop inside
// [Transport.RoundTrip], which sends exactly the request it was given: the
// first try sends it as it is, each later one a copy with a fresh body from
// Request.GetBody; no header is added (URL user information never becomes
// Authorization), no cookie, no redirect followed. [Retryable] is the rule,
// offered to callers with their own loop. In short: only idempotent
// methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), or a request with an
// Idempotency-Key or X-Idempotency-Key header, and only when the body can
// be rewound (it is never buffered whole). A 429, 502, 503 or 504 reply and
// an error that may be transient (a connection refused, reset or closed
// early, a DNS failure) are retried. A refusal, a urlfetch limit, a
// certificate error, an invalid request, a cancelled context and a
// deadline (the context's, or urlfetch's over one exchange: the time the
// caller gave is spent) are never retried; urlfetch.IsPermanent gives the
// same answer for an error.
//
// Each wait lies between Config.RetryWaitMin and RetryWaitMax: a
// Retry-After header (seconds or an HTTP-date) is honoured within those
// bounds; otherwise the wait is drawn at random between RetryWaitMin and a
// ceiling that doubles with each try. The request context bounds the tries and the waits: a wait
// ends when the context is done, and a wait that would outlast the
// context's deadline is not begun, the last reply being returned at once.
// The last reply or error is returned unchanged, so a 503 stays a
// response. Retries are logged at debug level when Config.Logger is set.
package transport
