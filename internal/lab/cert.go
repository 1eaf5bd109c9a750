package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"time"
)

// CA is a certificate authority made for a test: a self-signed ECDSA P-256
// certificate and its key, valid from an hour ago for a day. It issues
// server and client certificates ([CA.Issue], [CA.IssueSpec]); a client
// trusts it through [CA.Pool] (tls.Config.RootCAs, or tlsconf's RootCAs)
// or [CA.PEM] (a CA file). Its methods are safe for concurrent use.
//
// Making a certificate fails only on a mistake in the test (a host that is
// neither a DNS name nor an IP address, a key the code does not know), so
// the functions of this file panic then, as httptest.NewServer does when
// it cannot listen, and need no testing.TB: a package may build its
// certificates once, in a variable.
type CA struct {
	// Cert is the authority's certificate.
	Cert *x509.Certificate
	// Key is the authority's private key.
	Key *ecdsa.PrivateKey
}

// CertSpec describes a certificate for [CA.IssueSpec] or [SelfSigned].
type CertSpec struct {
	// CommonName is the subject's common name. Empty means the first of
	// Hosts, if any.
	CommonName string

	// Hosts are the names the certificate is valid for: each a DNS name
	// (a wildcard such as "*.example.com" too) or an IP address literal,
	// put in the subject alternative names as such.
	Hosts []string

	// NotBefore and NotAfter bound the validity. Zero means an hour ago
	// and a day from now; set both in the past for an expired
	// certificate.
	NotBefore, NotAfter time.Time

	// Client makes a certificate for TLS client authentication
	// (ExtKeyUsageClientAuth) instead of a server's
	// (ExtKeyUsageServerAuth).
	Client bool
}

// NewCA returns a new certificate authority whose certificate has the
// common name name.
func NewCA(name string) *CA {
	key := newKey()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(fmt.Sprintf("socketstest: making the CA %q: %v", name, err))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Sprintf("socketstest: parsing the CA %q: %v", name, err))
	}
	return &CA{Cert: cert, Key: key}
}

// Pool returns a new pool holding only the authority's certificate, for a
// client's RootCAs or a server's ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// PEM returns the authority's certificate in PEM, as a CA file holds it.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Issue returns a server certificate signed by ca for hosts, DNS names or
// IP addresses (see [CertSpec.Hosts]); the first is its common name. The
// chain holds the certificate alone, its Leaf is set, and its key is a new
// ECDSA P-256 key.
func (ca *CA) Issue(hosts ...string) tls.Certificate {
	return ca.IssueSpec(CertSpec{Hosts: hosts})
}

// IssueSpec returns a certificate signed by ca as spec describes, with a
// new ECDSA P-256 key. The chain holds the certificate alone, and its Leaf
// is set.
func (ca *CA) IssueSpec(spec CertSpec) tls.Certificate {
	return issue(spec, ca.Cert, ca.Key)
}

// SelfSigned returns a certificate signed by its own key as spec describes:
// a leaf that is not a CA, which a client trusts only by holding that very
// certificate in its pool.
func SelfSigned(spec CertSpec) tls.Certificate {
	return issue(spec, nil, nil)
}

// NewCert returns a server certificate for hosts (see [CA.Issue]), signed
// by a new authority, and a pool holding only that authority: what a TLS
// server on loopback and its client need, in one call.
//
//	cert, roots := socketstest.NewCert("www.example.com", "127.0.0.1")
//	srv := httptest.NewUnstartedServer(handler)
//	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
//	srv.StartTLS()
//	client := &tls.Config{RootCAs: roots}
func NewCert(hosts ...string) (tls.Certificate, *x509.CertPool) {
	ca := NewCA("socketstest CA")
	return ca.Issue(hosts...), ca.Pool()
}

// KeyPairPEM returns the chain of cert and its private key in PEM (the key
// in PKCS #8), as a certificate file and a key file hold them, for
// tls.LoadX509KeyPair and tls.X509KeyPair.
func KeyPairPEM(cert tls.Certificate) (certPEM, keyPEM []byte) {
	for _, der := range cert.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		panic(fmt.Sprintf("socketstest: encoding a key: %v", err))
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// issue makes the certificate spec describes, signed by parent and its key
// parentKey, or self-signed when parent is nil.
func issue(spec CertSpec, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) tls.Certificate {
	key := newKey()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: spec.CommonName},
		NotBefore:    spec.NotBefore,
		NotAfter:     spec.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.Subject.CommonName == "" && len(spec.Hosts) > 0 {
		tmpl.Subject.CommonName = spec.Hosts[0]
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(24 * time.Hour)
	}
	if spec.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range spec.Hosts {
		if a, err := netip.ParseAddr(h); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		panic(fmt.Sprintf("socketstest: making a certificate for %q: %v", spec.Hosts, err))
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Sprintf("socketstest: parsing a certificate for %q: %v", spec.Hosts, err))
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func newKey() *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("socketstest: making a key: %v", err))
	}
	return key
}

// serial returns a random serial number of 62 bits: certificates made in
// one run never share one (RFC 5280, section 4.1.2.2).
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(fmt.Sprintf("socketstest: making a serial number: %v", err))
	}
	return n.Add(n, big.NewInt(1)) // positive
}
