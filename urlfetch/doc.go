// Package urlfetch is an [http.RoundTripper] that behaves like App Engine's
// URL Fetch service: a limited fetch service in which each exchange is one
// bounded operation.
//
// It exists so that a Go program gets the guarantees App Engine's default
// outbound HTTP gave, wherever it runs: requests cannot reach private or
// loopback addresses, cannot send or receive unbounded amounts of data,
// cannot hang, and every failure is a typed error a caller can branch on.
// It is the default backend of package
// [github.com/outbound-go/outbound/transport].
//
// # The rules
//
// A [Transport] checks every request before anything is sent, and refuses
// what the service refused:
//
//   - schemes: http and https only;
//   - methods: GET, POST, HEAD, PUT, DELETE, PATCH;
//   - ports: none given, 80-90, 440-450, 1024-65535; port 0 (":0") means
//     the scheme's default port, as App Engine took it: the request goes
//     to port 80 or 443, with no port in its Host header. Port 0 written
//     otherwise (":00") is refused, as on the sockets backend;
//   - URL length: at most [MaxURLLength] (10,240) characters;
//   - credentials: a URL with user information ("http://user:pass@host/",
//     a login alone, or an empty one) is an invalid URL, never sent as
//     Authorization, as App Engine refused "the login and password
//     portion";
//   - request body: at most [MaxRequestBody] (10 MiB); a body of unknown
//     length is read into memory, up to the limit and one byte, before
//     anything is sent. The body of a GET, HEAD or DELETE is dropped
//     unread, whatever its size, and no Content-Length is sent, as App
//     Engine sent a payload only with POST, PUT and PATCH;
//   - destinations: public addresses only, checked by a [sockets.Dialer]
//     with [sockets.PublicPolicy] (the never-public rule of the sockets
//     backend, with Google's ranges reachable) on every connection, so on
//     every redirect hop too. No proxy is ever used: a proxy would bypass
//     the check.
//
// The scheme, method, port and size rules belong to the Transport and hold
// whatever destination policy a caller gives it.
//
// Each exchange then keeps to these rules:
//
//   - deadline: one deadline covers connecting, sending, the reply and
//     reading its body: 5 seconds by default, at most 60 seconds, or 10
//     minutes for background work ([Transport.Background]); a shorter
//     deadline of the request's context wins;
//   - response body: at most [MaxResponseBody] (32 MiB) of it is
//     delivered, measured as the application reads it (after
//     decompression); a longer body ends, after exactly the limit, with an
//     error matching [ErrResponseTooLarge], never silently, or with
//     [Transport.StrictResponseLimit] RoundTrip fails instead;
//   - headers: Content-Length, Host, Vary, Via, X-Forwarded-For,
//     X-AppEngine-Inbound-AppId and X-ProxyUser-IP are removed from the
//     request (in any letter case), and Host and Content-Length are set from
//     the request itself (Request.Host is ignored: the Host header is the
//     URL's host);
//   - User-Agent: " AppEngine-Google; (+http://code.google.com/appengine;
//     appid: APPID)" is appended to the application's User-Agent; when it
//     sets none (or an empty one), "AppEngine-Google;
//     (+http://code.google.com/appengine; appid: APPID)" is sent alone,
//     never net/http's default. APPID is [Transport.AppID], with its
//     partition prefix as App Engine printed it ("s~my-app");
//   - Content-Type: a POST with a body and no Content-Type header gets
//     "application/x-www-form-urlencoded", as App Engine's did;
//   - compression: "Accept-Encoding: gzip" is added and a gzip reply
//     decompressed, unless the application set Accept-Encoding itself (then
//     the body comes as the server sent it), as net/http does;
//   - certificates: verified by default; skipping verification takes the
//     explicit, named option tlsconf.Config.InsecureSkipVerify. Any TLS
//     handshake that fails for a reason of TLS (a refused certificate, a
//     reply that is not TLS, no common version or application protocol, an
//     alert) is a certificate error, tlsconf.ErrCertificate, as App Engine took
//     any SSL error but a timeout for one; a timeout during the handshake
//     is a deadline error, and a connection the server closes or resets
//     during the handshake a closed connection, failures of the network
//     rather than of TLS (Python raised those as socket errors, except
//     that OpenSSL reported a clean close as an SSL error);
//   - status: Response.Status is the code and the reason phrase of that
//     code (http.StatusText), whatever the server wrote after the code, as
//     the service passed on the code alone; for a code with no text, the
//     code again ("599 599"), as App Engine's Go runtime wrote it (its
//     Python runtime wrote "599 Unknown");
//   - malformed replies: a status of 600 or more is not a response but an
//     error matching [ErrMalformedReply]; the reply is closed unread and
//     its connection not reused;
//   - redirects: a Transport follows none, as the service did when asked
//     not to (App Engine's Go runtime always asked so), and returns any
//     3xx as it came, with or without a Location header;
//   - redirects through [NewClient]: at most 5 are followed, for 301, 302,
//     303 and 307, each hop checked again; a 308 is returned as it came,
//     and so is a redirect without a Location header (App Engine's Python
//     stub, following, failed a 301, 302, 303 or 307 without one as a
//     malformed reply, but its Go runtime, whose http.Client did the
//     following, returned the response: the Go runtime's behaviour is
//     kept). On 301, 302 and 303 GET and HEAD are kept and any other method
//     becomes GET without its body, the application's Content-Type still
//     sent; 307 keeps both. No hop gets a Referer header but the one the
//     application set, and that one only on a hop to the same origin
//     (scheme, host and port) as its request. A redirect from https to
//     http is followed, as App Engine followed it, but from that hop on no
//     Authorization, Cookie or Proxy-Authorization header is sent (see
//     [CheckRedirect]); a hop whose URL has user information is refused,
//     as any such URL is.
//
// The bytes each exchange moves are counted on the wire and reported to
// [Transport.OnStats], as App Engine billed them (see [Stats]).
//
// # Errors
//
// Every error is an [*Error] that names the request and matches one of the
// sentinel errors: [ErrInvalidURL], [ErrInvalidMethod], [ErrInvalidRequest],
// [ErrPayloadTooLarge], [ErrResponseTooLarge], [ErrDeadlineExceeded] (also
// context.DeadlineExceeded), [ErrCanceled], [ErrDNS], [ErrConnectionClosed],
// [ErrMalformedReply], [ErrTooManyRedirects], tlsconf.ErrCertificate (which is
// tlsconf.ErrCertificate) and [ErrConfig] (which [Transport.Validate]
// returns naming no request). As App Engine's error classes did,
// [ErrPayloadTooLarge] also matches [ErrInvalidURL], and [ErrDNS],
// [ErrConnectionClosed], [ErrMalformedReply], [ErrTooManyRedirects] and
// [ErrDeadlineExceeded] match [ErrDownload], App Engine's DownloadError. A
// lookup of the host name that timed out is [ErrDNS] and a timeout: it
// matches [ErrDeadlineExceeded] and context.DeadlineExceeded too, and
// [Error.Timeout] reports true. Every refusal matches sockets.ErrDenied,
// and its Err is a *sockets.DeniedError, as on the
// sockets backend: a scheme, method or port refused by a rule of the
// service ([sockets.RuleScheme], [sockets.RuleMethod], [sockets.RulePort], or sockets.RuleSMTP
// and the policy's other port rules, so that a URL is refused for the same
// rule on both backends) and a destination refused by the policy; its Rule
// tells them apart. A TLS failure matches tlsconf.ErrCertificate. Package
// transport's Retryable and Classify tell the failures a retry cannot cure
// (refusals, invalid requests, limits, certificates) from those it may.
//
// # Use
//
// Use one Transport for many requests, directly or in an http.Client:
//
//	tr := &urlfetch.Transport{AppID: "my-app"}
//	if err := tr.Validate(); err != nil { // optional: a bad setting now, not at the first request
//		return err
//	}
//	client := urlfetch.NewClient(tr)
//	resp, err := client.Get("https://www.example.com/")
//	if errors.Is(err, sockets.ErrDenied) {
//		return err // refused: final, do not retry
//	}
//	body, err := urlfetch.ReadAll(resp) // reads in place, closes the body
//	if errors.Is(err, urlfetch.ErrResponseTooLarge) {
//		// body holds the first 32 MiB
//	}
//
// Tests reach a loopback server by widening the policy explicitly:
//
//	t := &urlfetch.Transport{Dialer: sockets.Dialer{
//		Policy: sockets.PublicPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32")),
//	}}
//
// or, keeping the production policy, by resolving a public name to a
// public address and connecting it to the loopback server with the
// connect seam (package socketstest).
package urlfetch
