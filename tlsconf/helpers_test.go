package tlsconf_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outbound-go/outbound/tlsconf"
	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// authority is a certificate with its key: a test CA or a self-signed leaf.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// leafSpec describes a certificate to issue. Zero times mean "valid from an
// hour ago for a day".
type leafSpec struct {
	cn        string
	dns       []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
	client    bool // for TLS client authentication instead of server
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newCA returns a fresh self-signed certificate authority.
func newCA(t testing.TB, name string) *authority {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &authority{cert: cert, key: key, pem: encodeCert(der)}
}

func (s leafSpec) template(t testing.TB) *x509.Certificate {
	notBefore, notAfter := s.notBefore, s.notAfter
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = time.Now().Add(24 * time.Hour)
	}
	usage := x509.ExtKeyUsageServerAuth
	if s.client {
		usage = x509.ExtKeyUsageClientAuth
	}
	return &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: s.cn},
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

// issue returns a leaf certificate signed by ca, with the PEM of the
// certificate and of its key.
func (ca *authority) issue(t testing.TB, s leafSpec) (cert tls.Certificate, certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, s.template(t), ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pair(t, der, key)
}

// selfSigned returns a self-signed leaf certificate, not a CA, and its PEM.
func selfSigned(t testing.TB, s leafSpec) (tls.Certificate, []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := s.template(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, certPEM, _ := pair(t, der, key)
	return cert, certPEM
}

func pair(t testing.TB, der []byte, key *ecdsa.PrivateKey) (tls.Certificate, []byte, []byte) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := encodeCert(der)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM, keyPEM
}

// writeFile writes data to a new file in t's temporary directory and
// returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serverResult is the outcome of one server-side handshake.
type serverResult struct {
	state tls.ConnectionState
	err   error
}

// startServer runs a TLS server on 127.0.0.1 until the test ends. For each
// connection it completes the handshake with cfg, writes "ok" and closes.
// Each handshake's outcome is sent on the returned channel, or dropped if
// nobody reads it.
func startServer(t *testing.T, cfg *tls.Config) (addr string, results <-chan serverResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan serverResult, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(c, cfg)
				err := tc.Handshake()
				if err == nil {
					_, err = io.WriteString(tc, "ok")
				}
				if err == nil {
					err = tc.CloseWrite()
				}
				select {
				case out <- serverResult{state: tc.ConnectionState(), err: err}:
				default:
				}
			})
		}
	})
	return ln.Addr().String(), out
}

// startStallServer runs a server on 127.0.0.1 that accepts connections and
// never answers; it reports each accepted connection on the returned
// channel and holds it until the client closes it or the test ends.
func startStallServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan struct{}, 16)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case out <- struct{}{}:
			default:
			}
			wg.Go(func() {
				io.Copy(io.Discard, c) // until the client or Cleanup closes it
			})
		}
	})
	return ln.Addr().String(), out
}

// dial connects to addr on loopback and runs tlsconf.Handshake. It returns
// the raw connection too, to check that a failed handshake closed it.
func dial(t *testing.T, ctx context.Context, base *tls.Config, addr, serverName string) (*tls.Conn, net.Conn, error) {
	t.Helper()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.Handshake(ctx, raw, base, serverName)
	if tc != nil {
		t.Cleanup(func() { tc.Close() })
	}
	return tc, raw, err
}

// exchange handshakes and then reads the server's "ok", so that TLS 1.3
// session tickets and post-handshake alerts reach the client. Any error
// goes through tlsconf.AsCertificateError.
func exchange(t *testing.T, base *tls.Config, addr, serverName string) (tls.ConnectionState, error) {
	t.Helper()
	tc, _, err := dial(t, t.Context(), base, addr, serverName)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	got, err := io.ReadAll(tc)
	if err != nil {
		return tc.ConnectionState(), tlsconf.AsCertificateError(serverName, err)
	}
	if string(got) != "ok" {
		t.Fatalf("read %q from the server, want %q", got, "ok")
	}
	return tc.ConnectionState(), nil
}

// assertClosed fails unless conn has been closed on our side.
func assertClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	if _, err := conn.Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after a failed handshake, Write on the connection = %v, want net.ErrClosed", err)
	}
}

func mustClient(t testing.TB, cfg tlsconf.Config, alpn ...string) *tls.Config {
	t.Helper()
	c, err := tlsconf.Client(cfg, alpn...)
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	return c
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
