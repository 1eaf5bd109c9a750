package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/tlsconf"
)

func TestAsCertificateError(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("Classify CA")
	many := &x509.Certificate{DNSNames: strings.Split("a b c d e f g h i j", " ")}
	verification := func(err error) error { return &tls.CertificateVerificationError{Err: err} }
	inURL := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://host.test/", Err: err}
	}
	inOp := func(err error) error {
		return &net.OpError{Op: "remote error", Net: "tcp", Err: err}
	}
	already := &tlsconf.CertificateError{Host: "x.test", Reason: "r", Err: io.EOF}

	for _, tt := range []struct {
		name       string
		host       string
		err        error
		wantHost   string // empty: err must come back unchanged
		wantReason string
	}{
		{"nil", "h.test", nil, "", ""},
		{"EOF", "h.test", io.EOF, "", ""},
		{"connection refused", "h.test", inOp(errors.New("connection refused")), "", ""},
		{"other alert", "h.test", inOp(tls.AlertError(40)), "", ""}, // handshake_failure
		{"already classified", "h.test", fmt.Errorf("wrapped: %w", already), "", ""},

		{"unknown authority", "h.test", verification(x509.UnknownAuthorityError{Cert: ca.Cert}),
			"h.test", `signed by unknown authority (issuer "CN=Classify CA")`},
		{"unknown authority without certificate", "h.test", x509.UnknownAuthorityError{},
			"h.test", "signed by unknown authority"},
		{"hostname", "h.test", verification(x509.HostnameError{Certificate: ca.Cert, Host: "h.test"}),
			"h.test", `not valid for name "h.test" (it has no subject alternative names)`},
		{"hostname, host from the error", "", x509.HostnameError{Host: "inner.test"},
			"inner.test", `not valid for name "inner.test"`},
		{"hostname, many names", "h.test", x509.HostnameError{Certificate: many, Host: "h.test"},
			"h.test", `not valid for name "h.test" (valid for a, b, c, d, e, f, g, h and 2 more)`},
		{"expired", "h.test", verification(x509.CertificateInvalidError{Reason: x509.Expired, Detail: "current time X is after Y"}),
			"h.test", "expired or not yet valid: current time X is after Y"},
		{"not a CA", "h.test", x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign},
			"h.test", "issued by a certificate that is not a CA"},
		{"key usage", "h.test", x509.CertificateInvalidError{Reason: x509.IncompatibleUsage},
			"h.test", "key usage not valid for this purpose"},
		{"no valid chains", "h.test", x509.CertificateInvalidError{Reason: x509.NoValidChains, Detail: "d"},
			"h.test", "no valid certificate chain: d"},
		{"unknown invalid reason", "h.test", x509.CertificateInvalidError{Reason: 99},
			"h.test", "invalid (x509: unknown error)"},
		{"system roots", "h.test", verification(x509.SystemRootsError{}),
			"h.test", "no root certificates to verify it against"},
		{"other verification failure", "h.test", verification(errors.New("pinned key mismatch")),
			"h.test", "verification failed: pinned key mismatch"},
		// RFC 8446, section 6.2: certificate_required(116), bad_certificate(42).
		{"certificate required", "h.test", inOp(tls.AlertError(116)),
			"h.test", "client certificate refused by the server (tls: certificate required)"},
		{"bad certificate", "h.test", inOp(tls.AlertError(42)),
			"h.test", "client certificate refused by the server (tls: bad certificate)"},
		{"inside url.Error and net.OpError", "h.test", inURL(inOp(verification(x509.UnknownAuthorityError{}))),
			"h.test", "signed by unknown authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tlsconf.AsCertificateError(tt.host, tt.err)
			if tt.wantHost == "" {
				if got != tt.err {
					t.Fatalf("got %v, want the error unchanged", got)
				}
				return
			}
			ce, ok := got.(*tlsconf.CertificateError)
			if !ok {
				t.Fatalf("got %T %v, want a *CertificateError", got, got)
			}
			if ce.Host != tt.wantHost || ce.Reason != tt.wantReason {
				t.Errorf("got Host %q, Reason %q; want %q, %q", ce.Host, ce.Reason, tt.wantHost, tt.wantReason)
			}
			if ce.Err != tt.err {
				t.Error("Err is not the original error")
			}
			if !errors.Is(got, tlsconf.ErrCertificate) {
				t.Error("errors.Is(err, ErrCertificate) = false")
			}
			if want := "tlsconf: certificate for " + tt.wantHost + ": " + tt.wantReason; got.Error() != want {
				t.Errorf("Error() = %q, want %q", got.Error(), want)
			}
		})
	}
}

func TestCertificateErrorChain(t *testing.T) {
	t.Parallel()
	inner := x509.HostnameError{Host: "h.test"}
	err := error(&tlsconf.CertificateError{Host: "h.test", Reason: "r", Err: fmt.Errorf("dial: %w", inner)})
	if !errors.Is(err, tlsconf.ErrCertificate) {
		t.Error("errors.Is(err, ErrCertificate) = false")
	}
	if !errors.Is(fmt.Errorf("outer: %w", err), tlsconf.ErrCertificate) {
		t.Error("a wrapped CertificateError does not match ErrCertificate")
	}
	if errors.Is(err, io.EOF) {
		t.Error("matches an unrelated sentinel")
	}
	if _, ok := errors.AsType[x509.HostnameError](err); !ok {
		t.Error("the x509 error is not reachable through Unwrap")
	}
	if errors.Is(io.EOF, tlsconf.ErrCertificate) {
		t.Error("io.EOF matches ErrCertificate")
	}
}
