package lab_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
)

// verify checks cert's leaf against roots for host, as a TLS client does.
func verify(cert tls.Certificate, roots *x509.CertPool, host string, usage x509.ExtKeyUsage) error {
	_, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func TestCAIssue(t *testing.T) {
	ca := lab.NewCA("Test CA")
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "Test CA" {
		t.Fatalf("CA certificate: IsCA %v, name %q", ca.Cert.IsCA, ca.Cert.Subject.CommonName)
	}
	cert := ca.Issue("www.example.com", "*.example.net", "127.0.0.1", "::1")
	leaf := cert.Leaf
	if leaf == nil || len(cert.Certificate) != 1 || !bytes.Equal(cert.Certificate[0], leaf.Raw) {
		t.Fatalf("the chain is not the leaf alone: %d certificates, Leaf %v", len(cert.Certificate), leaf != nil)
	}
	if leaf.IsCA || leaf.Subject.CommonName != "www.example.com" {
		t.Errorf("leaf: IsCA %v, name %q", leaf.IsCA, leaf.Subject.CommonName)
	}
	if !slices.Equal(leaf.DNSNames, []string{"www.example.com", "*.example.net"}) {
		t.Errorf("DNS names %q", leaf.DNSNames)
	}
	var ips []netip.Addr
	for _, ip := range leaf.IPAddresses {
		a, _ := netip.AddrFromSlice(ip)
		ips = append(ips, a)
	}
	if !slices.Equal(ips, []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}) {
		t.Errorf("IP addresses %v", ips)
	}
	for _, host := range []string{"www.example.com", "a.example.net", "127.0.0.1", "::1"} {
		if err := verify(cert, ca.Pool(), host, x509.ExtKeyUsageServerAuth); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if err := verify(cert, ca.Pool(), "other.example.com", x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("verified for a name it does not hold")
	}
	if err := verify(cert, lab.NewCA("Other").Pool(), "www.example.com", x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("verified against another authority")
	}
	if err := verify(cert, ca.Pool(), "www.example.com", x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("a server certificate verified for client authentication")
	}
	if other := ca.Issue("www.example.com"); other.Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}

func TestCAIssueSpec(t *testing.T) {
	ca := lab.NewCA("Spec CA")
	client := ca.IssueSpec(lab.CertSpec{CommonName: "the client", Client: true})
	if client.Leaf.Subject.CommonName != "the client" {
		t.Errorf("common name %q", client.Leaf.Subject.CommonName)
	}
	if err := verify(client, ca.Pool(), "", x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if err := verify(client, ca.Pool(), "", x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("a client certificate verified for a server")
	}

	expired := ca.IssueSpec(lab.CertSpec{Hosts: []string{"old.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	var invalid x509.CertificateInvalidError
	if err := verify(expired, ca.Pool(), "old.test", x509.ExtKeyUsageServerAuth); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Errorf("expired certificate: %v, want x509.Expired", err)
	}
}

func TestSelfSigned(t *testing.T) {
	self := lab.SelfSigned(lab.CertSpec{Hosts: []string{"self.test"}})
	if self.Leaf.IsCA || !bytes.Equal(self.Leaf.RawIssuer, self.Leaf.RawSubject) {
		t.Fatalf("not a self-signed leaf: IsCA %v, issuer %q", self.Leaf.IsCA, self.Leaf.Issuer)
	}
	pool := x509.NewCertPool()
	pool.AddCert(self.Leaf)
	if err := verify(self, pool, "self.test", x509.ExtKeyUsageServerAuth); err != nil {
		t.Errorf("trusted as itself: %v", err)
	}
	if err := verify(self, x509.NewCertPool(), "self.test", x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("verified with an empty pool")
	}
}

// The PEM forms load as a CA file, a certificate file and a key file do.
func TestPEM(t *testing.T) {
	ca := lab.NewCA("PEM CA")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.PEM()) || !pool.Equal(ca.Pool()) {
		t.Fatal("the CA's PEM does not load as its pool")
	}
	cert := ca.Issue("pem.test")
	certPEM, keyPEM := lab.KeyPairPEM(cert)
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Fatalf("key PEM %q", keyPEM)
	}
	loaded, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(loaded.Certificate, cert.Certificate, bytes.Equal) {
		t.Error("the certificate file holds another chain")
	}
}

// NewCert's certificate and pool make a TLS exchange on loopback.
func TestNewCertHandshake(t *testing.T) {
	cert, roots := lab.NewCert("tls.example", "127.0.0.1")
	srv := lab.NewTLSServer(t, &tls.Config{Certificates: []tls.Certificate{cert}}, func(_ context.Context, c net.Conn) {
		io.WriteString(c, "hello")
	})
	for _, name := range []string{"tls.example", "127.0.0.1"} {
		c, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: roots, ServerName: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "hello" {
			t.Errorf("%s: read %q, %v", name, got, err)
		}
	}
	if _, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "tls.example"}); err == nil {
		t.Error("a client trusting nothing completed the handshake")
	}
}
