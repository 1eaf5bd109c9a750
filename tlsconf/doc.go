// Package tlsconf builds every [tls.Config] that outbound uses to dial out.
//
// It exists so that the TLS defaults of the library live in one place and
// cannot drift apart between HTTP (urlfetch, transport) and the mail protocols
// (SMTP STARTTLS, IMAPS): TLS 1.2 at least, certificates verified against the
// system roots plus any CA the caller adds, a client session cache for
// resumption, and certificate failures reported as a [*CertificateError] that
// names the host and the reason. Skipping verification is possible only
// through the loudly named [Config.InsecureSkipVerify], and it is logged when
// the configuration is built.
//
// Build a base configuration once, with the ALPN protocols for its use, and
// share it; never mutate it. For HTTP, hand it to net/http, which sets the
// server name for each connection on its own clone:
//
//	base, err := tlsconf.Client(tlsconf.Config{}, "h2", "http/1.1")
//	if err != nil {
//		return err
//	}
//	tr := &http.Transport{TLSClientConfig: base}
//
// For a protocol that upgrades a connection itself (IMAPS on port 993, or SMTP
// after STARTTLS on port 587), use [Handshake], which sets the server name on
// a clone and honours ctx:
//
//	base, err := tlsconf.Client(tlsconf.Config{}) // no ALPN for mail
//	...
//	tc, err := tlsconf.Handshake(ctx, conn, base, "imap.example.com")
//	if errors.Is(err, tlsconf.ErrCertificate) {
//		// the server's certificate was refused; err says which host and why
//	}
//
// Errors that come back from net/http carry the same information once passed
// through [AsCertificateError].
//
// The environment is read only by [FromEnv]; nothing else in this package
// looks at it.
package tlsconf
