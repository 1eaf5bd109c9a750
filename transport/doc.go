// Package transport is Outbound's front door: it builds the http.RoundTripper
// of the backend a deployment asks for, urlfetch or sockets, explicitly with
// [New] or from the environment with [FromEnv].
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
// takes its deadlines from the request context. Neither backend ever uses a
// proxy from the environment, which would carry connections past the
// destination check, and every redirect hop is checked again because every
// connection is.
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
// Config.Retries turns on retries through go-retryablehttp's client loop.
// Only idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), or a
// request with an Idempotency-Key header, are retried, and only when the
// body can be rewound with Request.GetBody (it is never buffered whole).
// A policy refusal, a urlfetch limit or refusal (urlfetch's deadline over
// the exchange counts as one of its limits), a certificate error and a
// cancelled or expired context are never retried. A 429 or 5xx reply (but
// 501) is retried after its Retry-After, or after exponential backoff; the
// last reply or error is returned unchanged, so a 5xx stays a response.
// Nothing is logged unless Config.Logger is set.
package transport
