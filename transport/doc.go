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
// the caller asks ([FromEnv], [ConfigFromEnv]); [ConfigFromEnv] lists every
// variable and the [Config] field it sets.
//
// Each setting has one place in [Config]. What both backends use is a field
// of Config or of its Dialer, a [sockets.Dialer] value: the destination
// Policy, the Resolver, the dial Timeout, the egress Proxy, the
// MeterProvider and the Connect seam for tests. What one backend alone uses
// is in the sub-struct named for it: Config.URLFetch ([URLFetchConfig]: the
// app id, the deadline, background mode, the OnStats hook) and
// Config.Sockets ([SocketsConfig]: the bounds on a response's headers).
//
// The urlfetch backend is [github.com/outbound-go/outbound/urlfetch]'s
// Transport: a bounded fetch with URL Fetch's methods, ports, sizes,
// deadline and header rules, to public destinations (Google's ranges
// included). The sockets backend is an http.Transport whose every
// connection goes through Config.Dialer with the Sockets API policy,
// TLS from [github.com/outbound-go/outbound/tlsconf], keep-alive, and HTTP/2
// negotiated by ALPN; it streams bodies with no size limit of its own and
// takes its deadlines from the request context, as net/http does, but for
// a bound on the size of a response's headers, 1 MiB by default
// (Config.Sockets.MaxResponseHeaderBytes); a bound on the time they take
// to arrive is Config.Sockets.ResponseHeaderTimeout. [SafeClient], for
// fetching URLs that others choose, sets both, and a timeout on the whole
// exchange.
// [Install] of the sockets backend puts its *http.Transport in
// http.DefaultTransport, so that code which clones http.DefaultTransport
// gets the checked dialer too. Neither backend ever uses a proxy from the
// environment, which would carry connections past the destination check,
// and every redirect hop is checked again because every connection is.
//
// # Per-tenant policy
//
// A service that fetches URLs for many tenants, each with rules of its own,
// derives one Transport per tenant with [Transport.ForPolicy]: the tenant's
// *sockets.Policy becomes the derived Transport's whole policy, in place of
// the base's (nil means the backend's default), with the base's other
// settings and TLS session cache, and a connection pool of its own, so that
// a connection made under one tenant's policy is never reused under
// another's. The policy is part of the Transport the code holds, not a
// value in a request's context that a library could drop. Derive a
// tenant's Transport once, when its policy is made, and keep it: each
// holds its idle connections until its CloseIdleConnections, which closes
// its own pool only, or their idle timeout.
//
//	base, err := transport.New(transport.Config{Backend: transport.Sockets})
//	...
//	acme, err := base.ForPolicy(sockets.DefaultPolicy().AllowHosts("api.acme.example"))
//
// # Errors
//
// Refusals are *[sockets.DeniedError] values on both backends, whichever
// rule refused (a URL scheme other than http and https is refused with
// sockets.RuleScheme on both); they match sockets.ErrDenied, and
// Config.OnRefusal, if set, receives each one. A nil request or URL, or a
// request through the zero Transport, matches [ErrInvalidRequest], this
// package's own sentinel. [New] validates the whole configuration up front.
//
// # Metrics
//
// Both backends record OpenTelemetry metrics through the MeterProvider of
// Config.Dialer (nil means no metrics, at no cost; pass
// otel.GetMeterProvider() for the global provider; while a provider
// records nothing, no connection is wrapped). The package uses the
// OpenTelemetry metric API only; the application brings the SDK. Every
// instrument is in the instrumentation scope
// "github.com/outbound-go/outbound", and no attribute holds a host name,
// an address or a port:
//
//	Instrument                       Kind, unit             Attributes
//	outbound.refusals                counter, {refusal}     outbound.rule (the rule's Code: "private",
//	                                                        "scheme", ...), network.transport ("tcp", "udp")
//	dns.lookup.duration              histogram, s           error.type on failure ("host_not_found",
//	                                                        "try_again", "no_recovery", "timeout",
//	                                                        "canceled", "_OTHER")
//	outbound.connect.duration        histogram, s           network.transport, network.type ("ipv4",
//	                                                        "ipv6"); error.type on failure
//	                                                        ("connection_refused", "connection_reset",
//	                                                        "unreachable", "proxy", "timeout", "canceled",
//	                                                        "_OTHER")
//	outbound.tls.handshake.duration  histogram, s           error.type on failure ("certificate",
//	                                                        "not_tls", "tls_alert", "timeout", "canceled",
//	                                                        "_OTHER")
//	outbound.io                      counter, By            network.transport, network.io.direction
//	                                                        ("transmit", "receive")
//	outbound.google_ranges.creation_time  gauge, s          none: the creationTime of the Google ranges
//	                                                        a googlefeed.Feed holds, in Unix seconds
//
// A failed step's error.type is one of the values shown, or the rule's
// code when a refusal ended it. A refusal is counted once, whether the dialer or a rule checked before
// the dial (a scheme, a urlfetch method or port) made it; the connect
// duration is of each attempt to an address the policy allowed; outbound.io
// counts the bytes of every checked connection, TLS records included, and
// is how the sockets backend's HTTP traffic is metered. The urlfetch
// backend also reports the bytes of each request to
// Config.URLFetch.OnStats. dns.lookup.duration is OpenTelemetry's own
// instrument; the durations' buckets are those its HTTP and DNS
// conventions advise (5 ms to 10 s).
//
// # Retries
//
// Config.Retries turns on retries, made by a loop inside
// [Transport.RoundTrip], which sends exactly the request it was given: the
// first try sends it as it is, each later one a copy with a fresh body from
// Request.GetBody; no header is added (URL user information never becomes
// Authorization), no cookie, no redirect followed. [Retryable] is the rule,
// the module's one retry decision, offered to callers with their own loop.
// In short: only idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT,
// DELETE), or a request with an Idempotency-Key or X-Idempotency-Key
// header, and only when the body can be rewound (it is never buffered
// whole). A 429, 502, 503 or 504 reply and an error that may be transient
// (a connection refused, reset or closed early, a DNS failure) are
// retried. A refusal, a urlfetch limit, a certificate error, an invalid
// request, a cancelled context and a deadline (the context's, or
// urlfetch's over one exchange: the time the caller gave is spent) are
// never retried.
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
