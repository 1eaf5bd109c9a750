package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// ErrCertificate is matched by errors.Is for every [*CertificateError]:
// branch on it to tell a refused certificate from other failures.
var ErrCertificate = errors.New("tlsconf: certificate error")

// CertificateError reports a certificate that made a TLS connection fail:
// the server's certificate refused by the client, or the client's
// certificate refused by the server. It matches [ErrCertificate] with
// errors.Is, and errors.As reaches the underlying crypto/tls and crypto/x509
// errors (such as x509.HostnameError) through Err.
type CertificateError struct {
	// Host is the server name the certificate was checked against, as
	// given to AsCertificateError or Handshake. It may be empty if the
	// caller did not know it.
	Host string

	// Reason says, in words, what is wrong with the certificate, such as
	// `signed by unknown authority (issuer "CN=Example CA")`.
	Reason string

	// Err is the error the failure was found in, unchanged (which may be a
	// *url.Error or *net.OpError around the TLS error).
	Err error
}

var _ error = (*CertificateError)(nil)

// Error returns "tlsconf: certificate for HOST: REASON".
func (e *CertificateError) Error() string {
	return "tlsconf: certificate for " + e.Host + ": " + e.Reason
}

// Unwrap returns Err.
func (e *CertificateError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrCertificate].
func (e *CertificateError) Is(target error) bool { return target == ErrCertificate }

// AsCertificateError returns err wrapped in a [*CertificateError] for host if
// err, or any error it wraps, is a certificate failure; otherwise it returns
// err unchanged (nil for nil). An err that already holds a *CertificateError
// is returned unchanged too.
//
// It recognises, anywhere in err's chain (through *url.Error, *net.OpError
// and any other wrapper): x509.UnknownAuthorityError, x509.HostnameError,
// x509.CertificateInvalidError (expiry among others), x509.SystemRootsError,
// *tls.CertificateVerificationError, and the TLS alerts by which a server
// refuses the client's certificate (RFC 8446, section 6.2). Call it on errors
// from net/http, from a TLS handshake, or from the first Read after a TLS 1.3
// handshake. It is safe for concurrent use.
func AsCertificateError(host string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*CertificateError](err); ok {
		return err
	}
	reason, ok := certificateReason(err)
	if !ok {
		return err
	}
	if host == "" {
		if he, ok := errors.AsType[x509.HostnameError](err); ok {
			host = he.Host
		}
	}
	return &CertificateError{Host: host, Reason: reason, Err: err}
}

// certificateReason describes the certificate failure in err's chain, the
// most specific first, and reports whether there is one.
func certificateReason(err error) (string, bool) {
	if e, ok := errors.AsType[x509.HostnameError](err); ok {
		return hostnameReason(e), true
	}
	if e, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		if e.Cert != nil {
			return fmt.Sprintf("signed by unknown authority (issuer %q)", e.Cert.Issuer.String()), true
		}
		return "signed by unknown authority", true
	}
	if e, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return invalidReason(e), true
	}
	if _, ok := errors.AsType[x509.SystemRootsError](err); ok {
		return "no root certificates to verify it against", true
	}
	if e, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return "verification failed: " + e.Err.Error(), true
	}
	if e, ok := tlsAlert(err); ok {
		switch e {
		// RFC 8446, section 6.2: bad_certificate(42),
		// unsupported_certificate(43), certificate_revoked(44),
		// certificate_expired(45), certificate_unknown(46), unknown_ca(48),
		// certificate_required(116). A client receives them when the
		// server refuses the client certificate (or its absence).
		case 42, 43, 44, 45, 46, 48, 116:
			return "client certificate refused by the server (" + e.Error() + ")", true
		}
	}
	return "", false
}

// tlsAlert returns the TLS alert in err's chain, if any. Over TCP,
// crypto/tls reports a received alert as a *net.OpError around a value of
// its unexported type alert, which errors.As cannot name; that type is
// recognised by reflection (its underlying type is uint8, as is that of
// tls.AlertError, which QUIC connections return and which is matched too).
// TestClientCertificate fails if crypto/tls changes this.
func tlsAlert(err error) (tls.AlertError, bool) {
	switch x := err.(type) {
	case nil:
		return 0, false
	case tls.AlertError:
		return x, true
	case interface{ Unwrap() error }:
		if a, ok := tlsAlert(x.Unwrap()); ok {
			return a, true
		}
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			if a, ok := tlsAlert(e); ok {
				return a, true
			}
		}
	}
	if v := reflect.ValueOf(err); v.Kind() == reflect.Uint8 && v.Type().PkgPath() == "crypto/tls" && v.Type().Name() == "alert" {
		return tls.AlertError(v.Uint()), true
	}
	return 0, false
}

// maxNames bounds the names listed in a hostname mismatch: a CDN
// certificate can carry hundreds.
const maxNames = 8

func hostnameReason(e x509.HostnameError) string {
	reason := fmt.Sprintf("not valid for name %q", e.Host)
	c := e.Certificate
	if c == nil {
		return reason
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	switch {
	case len(names) == 0:
		return reason + " (it has no subject alternative names)"
	case len(names) > maxNames:
		return fmt.Sprintf("%s (valid for %s and %d more)", reason, strings.Join(names[:maxNames], ", "), len(names)-maxNames)
	}
	return reason + " (valid for " + strings.Join(names, ", ") + ")"
}

func invalidReason(e x509.CertificateInvalidError) string {
	var reason string
	switch e.Reason {
	case x509.Expired:
		reason = "expired or not yet valid"
	case x509.NotAuthorizedToSign:
		reason = "issued by a certificate that is not a CA"
	case x509.CANotAuthorizedForThisName:
		reason = "issuer not authorized to sign for this name"
	case x509.CANotAuthorizedForExtKeyUsage:
		reason = "issuer not authorized for this extended key usage"
	case x509.TooManyIntermediates:
		reason = "too many intermediates for the path length constraint"
	case x509.IncompatibleUsage:
		reason = "key usage not valid for this purpose"
	case x509.NameMismatch:
		reason = "issuer name does not match the issuing certificate"
	case x509.UnconstrainedName:
		reason = "name outside the issuer's name constraints"
	case x509.NoValidChains:
		reason = "no valid certificate chain"
	default:
		return "invalid (" + e.Error() + ")"
	}
	if e.Detail != "" {
		reason += ": " + e.Detail
	}
	return reason
}
