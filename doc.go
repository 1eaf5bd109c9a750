// Package outbound gives a Go program App Engine's outbound networking,
// anywhere: an [net/http.RoundTripper] factory with two backends.
//
//   - urlfetch (the default, package [github.com/outbound-go/outbound/urlfetch])
//     is a limited fetch service, as App Engine's URL Fetch was: allowed
//     methods and ports only, 10 MiB requests, 32 MiB responses, a deadline
//     over the whole exchange, header rules, public destinations only.
//   - sockets (package [github.com/outbound-go/outbound/sockets]) makes raw,
//     outbound-only connections with native TLS, keep-alive and HTTP/2, each
//     checked against App Engine's Sockets API policy at connect time.
//
// Package [github.com/outbound-go/outbound/transport] picks a backend,
// explicitly or from the environment: GAE_USE_SOCKETS_HTTPLIB selects
// sockets when it is set to any value, the empty string included. Package
// [github.com/outbound-go/outbound/tlsconf] builds every TLS configuration
// the library uses.
//
// This root package holds no code; it documents the module and carries its
// end-to-end tests.
package outbound
