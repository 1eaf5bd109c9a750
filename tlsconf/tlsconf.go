package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
)

// Config describes the client side of a TLS connection. The zero value is
// ready to use: TLS 1.2 or later, the system roots, no client certificate and
// a fresh session cache.
//
// Config is a plain value. [Client] reads it and never writes to it, nor to
// the pool, bytes or certificates it points to, so a Config may be shared and
// used by several goroutines as long as none of them changes it.
type Config struct {
	// MinVersion is the lowest TLS version offered: tls.VersionTLS12 or
	// tls.VersionTLS13. Zero means TLS 1.2. Any other value, including every
	// version below TLS 1.2, makes [Client] fail.
	MinVersion uint16

	// RootCAs, if not nil, replaces the system roots as the set of trusted
	// authorities; use it in tests with httptest certificates. Nil means the
	// system roots. The pool is cloned when the configuration is built, so
	// later changes to it have no effect.
	RootCAs *x509.CertPool

	// CAFile is the path of a PEM file with extra CA certificates that are
	// trusted in addition to the roots (the system roots, or RootCAs when it
	// is set). It is read once, by [Client]. Empty means no file.
	CAFile string

	// CAPEM holds extra CA certificates in PEM form, trusted like those of
	// CAFile; both may be set. Nil means none.
	CAPEM []byte

	// CertFile is the path of a PEM file holding the client certificate,
	// followed by its intermediates, presented to servers that ask for one.
	// It is loaded once, by [Client]; a rotated file needs a new
	// configuration. Empty means no certificate from a file. CertFile and
	// KeyFile are set together or not at all.
	CertFile string

	// KeyFile is the path of the PEM private key matching CertFile. Empty
	// means none.
	KeyFile string

	// Certificates are further client certificates, offered after the one
	// from CertFile. The server's request decides which one is sent. Nil
	// means none.
	Certificates []tls.Certificate

	// InsecureSkipVerify, if true, DISABLES ALL VERIFICATION OF THE SERVER'S
	// CERTIFICATE AND NAME: ANYONE ON THE PATH CAN READ AND CHANGE THE TRAFFIC.
	// It exists for debugging against a server whose certificate cannot be
	// fixed, never for production. Each time a configuration is built with it,
	// a warning is logged through Logger. False, the zero value, verifies.
	InsecureSkipVerify bool

	// SessionCache stores TLS sessions for resumption. Nil means that each
	// call to [Client] creates its own LRU cache (tls.NewLRUClientSessionCache
	// with its default size), shared by every clone of that configuration,
	// such as those made by [ForHost] and [Handshake].
	SessionCache tls.ClientSessionCache

	// Logger receives the warning about InsecureSkipVerify. Nil means
	// slog.Default() at the time [Client] is called.
	Logger *slog.Logger
}

// Client validates cfg and returns a new [tls.Config] for the client side of
// a connection, offering the ALPN protocols alpn in order of preference (none
// for the mail protocols; "h2", "http/1.1" for HTTP, RFC 9113 and RFC 7301).
//
// The files named by cfg are read, and its certificates parsed, during this
// call, which reports any problem: an unreadable file, PEM without a
// certificate, a certificate that does not match its key, an unsupported
// MinVersion. The result has no ServerName; set it per connection with
// [ForHost] or [Handshake], or let net/http set it.
//
// The result is safe for concurrent use by any number of connections
// provided that nobody modifies it; clone it before any change. Client itself
// is safe for concurrent use.
func Client(cfg Config, alpn ...string) (*tls.Config, error) {
	minVersion, err := cfg.minVersion()
	if err != nil {
		return nil, err
	}
	roots, err := cfg.rootCAs()
	if err != nil {
		return nil, err
	}
	certs, err := cfg.certificates()
	if err != nil {
		return nil, err
	}
	for _, p := range alpn {
		// RFC 7301, section 3.1: a protocol name is 1 to 255 bytes.
		if len(p) == 0 || len(p) > 255 {
			return nil, fmt.Errorf("tlsconf: ALPN protocol %q must be 1 to 255 bytes long", p)
		}
	}
	cache := cfg.SessionCache
	if cache == nil {
		cache = tls.NewLRUClientSessionCache(0)
	}
	tc := &tls.Config{
		MinVersion:         minVersion,
		RootCAs:            roots,
		Certificates:       certs,
		NextProtos:         slices.Clone(alpn),
		ClientSessionCache: cache,
		InsecureSkipVerify: cfg.InsecureSkipVerify,
	}
	if cfg.InsecureSkipVerify {
		cfg.logger().Warn("tlsconf: InsecureSkipVerify is set: server certificates are NOT verified and connections can be intercepted",
			slog.Bool("insecure_skip_verify", true))
	}
	return tc, nil
}

// ForHost returns a clone of base whose ServerName, used for SNI and for
// verifying the server's certificate, is serverName. Surrounding brackets
// ("[::1]") and a trailing dot ("example.com.") are removed first. An empty
// serverName keeps base.ServerName. base is never modified and must not be
// nil. The clone shares base's session cache.
//
// ForHost is safe for concurrent use as long as base is not being modified.
func ForHost(base *tls.Config, serverName string) *tls.Config {
	if base == nil {
		panic("tlsconf: ForHost called with a nil base config")
	}
	c := base.Clone()
	if name := normalizeServerName(serverName); name != "" {
		c.ServerName = name
	}
	return c
}

// normalizeServerName strips the forms a host takes in URLs and DNS that a
// certificate never contains: brackets around an IPv6 literal (RFC 3986,
// section 3.2.2) and the trailing dot of a fully qualified name.
func normalizeServerName(s string) string {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	return strings.TrimSuffix(s, ".")
}

// Handshake runs the client side of a TLS handshake over conn, with a clone
// of base whose ServerName is serverName (see [ForHost]), and returns the
// established connection, which the caller then owns and closes.
//
// The handshake stops when ctx is done, and then the error is ctx.Err(). On
// any failure Handshake closes conn. A certificate the client refuses comes
// back as a [*CertificateError] naming the server; any other error is
// returned as crypto/tls or ctx produced it.
//
// With TLS 1.3 a server that refuses the client certificate says so only
// after the handshake, so the first Read fails instead; pass that error
// through [AsCertificateError] too.
func Handshake(ctx context.Context, conn net.Conn, base *tls.Config, serverName string) (*tls.Conn, error) {
	cfg := ForHost(base, serverName)
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, AsCertificateError(cfg.ServerName, err)
	}
	return tc, nil
}

// minVersion returns the effective minimum version: TLS 1.2 for zero.
func (c *Config) minVersion() (uint16, error) {
	switch c.MinVersion {
	case 0, tls.VersionTLS12:
		return tls.VersionTLS12, nil
	case tls.VersionTLS13:
		return tls.VersionTLS13, nil
	}
	if c.MinVersion < tls.VersionTLS12 {
		return 0, fmt.Errorf("tlsconf: MinVersion %s is below TLS 1.2", tls.VersionName(c.MinVersion))
	}
	return 0, fmt.Errorf("tlsconf: MinVersion %s is not supported; use TLS 1.2 or TLS 1.3", tls.VersionName(c.MinVersion))
}

// logger returns the logger for warnings: slog.Default() for nil.
func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// rootCAs returns a new pool with RootCAs (or the system roots) and the extra
// CAs. It returns nil when there is nothing to add to the system roots, so
// that crypto/tls uses the platform verifier where there is one.
func (c *Config) rootCAs() (*x509.CertPool, error) {
	var extra []*x509.Certificate
	if c.CAFile != "" {
		data, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: reading CA file: %w", err)
		}
		certs, err := parseCertificates(data, "CA file "+c.CAFile)
		if err != nil {
			return nil, err
		}
		extra = append(extra, certs...)
	}
	if c.CAPEM != nil {
		certs, err := parseCertificates(c.CAPEM, "CAPEM")
		if err != nil {
			return nil, err
		}
		extra = append(extra, certs...)
	}

	var pool *x509.CertPool
	switch {
	case c.RootCAs != nil:
		pool = c.RootCAs.Clone()
	case len(extra) == 0:
		return nil, nil
	default:
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("tlsconf: loading system roots: %w", err)
		}
		pool = sys // a copy: SystemCertPool returns a new pool each time
	}
	for _, cert := range extra {
		pool.AddCert(cert)
	}
	return pool, nil
}

// parseCertificates returns every CERTIFICATE block of PEM data. Other
// blocks (other types, or with headers) and text between blocks are skipped,
// as x509.CertPool.AppendCertsFromPEM does; unlike it, a certificate that
// does not parse, or data without any certificate, is an error.
func parseCertificates(data []byte, source string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %s: certificate %d: %w", source, len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("tlsconf: %s: no PEM certificate found", source)
	}
	return certs, nil
}

// certificates returns the client certificates: the one from CertFile and
// KeyFile first, then Certificates.
func (c *Config) certificates() ([]tls.Certificate, error) {
	var certs []tls.Certificate
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: loading client certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
		}
		certs = append(certs, cert)
	case c.CertFile != "" || c.KeyFile != "":
		return nil, errors.New("tlsconf: CertFile and KeyFile must be set together")
	}
	for i, cert := range c.Certificates {
		if len(cert.Certificate) == 0 {
			return nil, fmt.Errorf("tlsconf: Certificates[%d] has no certificate", i)
		}
		if cert.PrivateKey == nil {
			return nil, fmt.Errorf("tlsconf: Certificates[%d] has no private key", i)
		}
	}
	return append(certs, c.Certificates...), nil
}
