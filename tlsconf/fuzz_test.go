package tlsconf_test

import (
	"crypto/x509"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/tlsconf"
)

// FuzzCAPEM checks the PEM parsing of Config.CAPEM against the reference,
// x509.CertPool.AppendCertsFromPEM: when Client accepts the bytes, its pool
// must be exactly what the reference builds from them, and it must never
// accept bytes in which the reference finds no certificate.
func FuzzCAPEM(f *testing.F) {
	ca := lab.NewCA("Fuzz CA")
	other := lab.NewCA("Other CA")
	_, keyPEM := lab.KeyPairPEM(ca.IssueSpec(lab.CertSpec{CommonName: "leaf"}))
	for _, seed := range [][]byte{
		// One certificate.
		ca.PEM(),
		// Two, with text around them, as in a bundle.
		append(append([]byte("# bundle\n"), ca.PEM()...), other.PEM()...),
		// A private key only: no certificate.
		keyPEM,
		// A key, then a certificate: the key is skipped.
		append(append([]byte{}, keyPEM...), ca.PEM()...),
		// A certificate block that does not parse.
		[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		// A block with headers: skipped, as by AppendCertsFromPEM.
		[]byte("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n"),
		// Not PEM at all, and nothing.
		[]byte("hello"),
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := tlsconf.Client(tlsconf.Config{RootCAs: x509.NewCertPool(), CAPEM: data})
		ref := x509.NewCertPool()
		refOK := ref.AppendCertsFromPEM(data)
		if err != nil {
			return
		}
		if !refOK {
			t.Fatalf("Client accepted %q, in which AppendCertsFromPEM finds no certificate", data)
		}
		if !c.RootCAs.Equal(ref) {
			t.Fatalf("Client's pool for %q differs from AppendCertsFromPEM's", data)
		}
	})
}
