package tlsconf_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/tlsconf"
)

func TestClientDefaults(t *testing.T) {
	t.Parallel()
	c := mustClient(t, tlsconf.Config{})
	if c.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %s, want TLS 1.2", tls.VersionName(c.MinVersion))
	}
	if c.MaxVersion != 0 {
		t.Errorf("MaxVersion = %s, want 0 (the newest)", tls.VersionName(c.MaxVersion))
	}
	if c.RootCAs != nil {
		t.Error("RootCAs is set, want nil (the system roots, through the platform verifier)")
	}
	if c.InsecureSkipVerify {
		t.Error("InsecureSkipVerify is set")
	}
	if c.NextProtos != nil {
		t.Errorf("NextProtos = %q, want none", c.NextProtos)
	}
	if c.ServerName != "" {
		t.Errorf("ServerName = %q, want empty", c.ServerName)
	}
	if c.ClientSessionCache == nil {
		t.Error("ClientSessionCache is nil")
	}
	if len(c.Certificates) != 0 {
		t.Errorf("%d client certificates, want none", len(c.Certificates))
	}

	// Each build has its own cache unless the caller gives one.
	if other := mustClient(t, tlsconf.Config{}); other.ClientSessionCache == c.ClientSessionCache {
		t.Error("two configurations share a session cache")
	}
	cache := tls.NewLRUClientSessionCache(1)
	if got := mustClient(t, tlsconf.Config{SessionCache: cache}).ClientSessionCache; got != cache {
		t.Error("Config.SessionCache was not used")
	}

	// TLS 1.3 only, when asked.
	if got := mustClient(t, tlsconf.Config{MinVersion: tls.VersionTLS13}).MinVersion; got != tls.VersionTLS13 {
		t.Errorf("MinVersion = %s, want TLS 1.3", tls.VersionName(got))
	}
}

func TestClientDoesNotAliasInput(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("Alias CA")
	other := lab.NewCA("Other CA")
	clientCert := ca.IssueSpec(lab.CertSpec{CommonName: "client", Client: true})

	roots := poolOf(ca.Cert)
	before := roots.Clone()
	caPEM := bytes.Clone(other.PEM())
	certs := []tls.Certificate{clientCert}
	protos := []string{"h2", "http/1.1"}
	cfg := tlsconf.Config{RootCAs: roots, CAPEM: caPEM, Certificates: certs}

	c := mustClient(t, cfg, protos...)

	if !roots.Equal(before) {
		t.Error("Client changed the caller's RootCAs pool")
	}
	if want := poolOf(ca.Cert, other.Cert); !c.RootCAs.Equal(want) {
		t.Error("RootCAs is not the caller's pool plus CAPEM")
	}
	if !bytes.Equal(caPEM, other.PEM()) {
		t.Error("Client changed CAPEM")
	}
	protos[0] = "changed"
	if c.NextProtos[0] != "h2" {
		t.Error("NextProtos aliases the caller's slice")
	}
	certs[0] = tls.Certificate{}
	if len(c.Certificates) != 1 || c.Certificates[0].Leaf == nil {
		t.Error("Certificates aliases the caller's slice")
	}
}

// Extra CAs are added to the system roots, not substituted for them.
func TestClientAddsToSystemRoots(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("Extra CA")
	want, err := x509.SystemCertPool()
	if err != nil {
		t.Skipf("no system roots: %v", err)
	}
	want.AddCert(ca.Cert)

	for _, tt := range []struct {
		name string
		cfg  tlsconf.Config
	}{
		{"CAPEM", tlsconf.Config{CAPEM: ca.PEM()}},
		{"CAFile", tlsconf.Config{CAFile: writeFile(t, "ca.PEM()", ca.PEM())}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mustClient(t, tt.cfg).RootCAs; !got.Equal(want) {
				t.Error("RootCAs is not the system roots plus the extra CA")
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("Errors CA")
	cert := ca.IssueSpec(lab.CertSpec{CommonName: "client", Client: true})
	certPEM, keyPEM := lab.KeyPairPEM(cert)
	_, otherKeyPEM := lab.KeyPairPEM(ca.IssueSpec(lab.CertSpec{CommonName: "other", Client: true}))
	certFile := writeFile(t, "cert.pem", certPEM)
	keyFile := writeFile(t, "key.pem", keyPEM)
	otherKeyFile := writeFile(t, "other-key.pem", otherKeyPEM)
	notPEM := writeFile(t, "not.pem", []byte("hello"))
	missing := writeFile(t, "x", nil) + ".missing"
	brokenPEM := []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")

	for _, tt := range []struct {
		name string
		cfg  tlsconf.Config
		alpn []string
		want string // a part of the error message
	}{
		{"TLS 1.1", tlsconf.Config{MinVersion: tls.VersionTLS11}, nil, "MinVersion TLS 1.1 is below TLS 1.2"},
		{"TLS 1.0", tlsconf.Config{MinVersion: tls.VersionTLS10}, nil, "below TLS 1.2"},
		{"SSL 3.0", tlsconf.Config{MinVersion: 0x0300}, nil, "below TLS 1.2"},
		{"unknown version", tlsconf.Config{MinVersion: 0x0305}, nil, "MinVersion 0x0305 is not supported"},
		{"CAPEM not PEM", tlsconf.Config{CAPEM: []byte("hello")}, nil, "CAPEM: no PEM certificate found"},
		{"CAPEM empty", tlsconf.Config{CAPEM: []byte{}}, nil, "CAPEM: no PEM certificate found"},
		{"CAPEM key only", tlsconf.Config{CAPEM: keyPEM}, nil, "CAPEM: no PEM certificate found"},
		{"CAPEM broken certificate", tlsconf.Config{CAPEM: brokenPEM}, nil, "CAPEM: certificate 1:"},
		{"CAFile missing", tlsconf.Config{CAFile: missing}, nil, "reading CA file"},
		{"CAFile not PEM", tlsconf.Config{CAFile: notPEM}, nil, "no PEM certificate found"},
		{"CertFile without KeyFile", tlsconf.Config{CertFile: certFile}, nil, "CertFile and KeyFile must be set together"},
		{"KeyFile without CertFile", tlsconf.Config{KeyFile: keyFile}, nil, "CertFile and KeyFile must be set together"},
		{"key does not match", tlsconf.Config{CertFile: certFile, KeyFile: otherKeyFile}, nil, "private key does not match public key"},
		{"cert file missing", tlsconf.Config{CertFile: missing, KeyFile: keyFile}, nil, "loading client certificate"},
		{"certificate without key", tlsconf.Config{Certificates: []tls.Certificate{{Certificate: cert.Certificate}}}, nil, "Certificates[0] has no private key"},
		{"empty certificate", tlsconf.Config{Certificates: []tls.Certificate{{}}}, nil, "Certificates[0] has no certificate"},
		// RFC 7301, section 3.1: protocol names are 1 to 255 bytes.
		{"empty ALPN", tlsconf.Config{}, []string{"h2", ""}, `ALPN protocol "" must be 1 to 255 bytes`},
		{"long ALPN", tlsconf.Config{}, []string{strings.Repeat("x", 256)}, "must be 1 to 255 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tlsconf.Client(tt.cfg, tt.alpn...)
			if err == nil {
				t.Fatal("Client succeeded, want an error")
			}
			if c != nil {
				t.Error("Client returned a config with its error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "tlsconf: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want the prefix %q and %q", msg, "tlsconf: ", tt.want)
			}
		})
	}
}

// TestVerification checks the server's certificate against several client
// configurations, over real handshakes on loopback.
func TestVerification(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("Test CA")
	good := ca.IssueSpec(lab.CertSpec{CommonName: "good", Hosts: []string{"good.test", "127.0.0.1", "::1"}})
	expired := ca.IssueSpec(lab.CertSpec{CommonName: "old", Hosts: []string{"old.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	self := lab.SelfSigned(lab.CertSpec{CommonName: "self", Hosts: []string{"self.test"}})
	selfPEM, _ := lab.KeyPairPEM(self)

	goodAddr, _ := startServer(t, &tls.Config{Certificates: []tls.Certificate{good}})
	expiredAddr, _ := startServer(t, &tls.Config{Certificates: []tls.Certificate{expired}})
	selfAddr, _ := startServer(t, &tls.Config{Certificates: []tls.Certificate{self}})

	withCA := tlsconf.Config{CAPEM: ca.PEM()}
	for _, tt := range []struct {
		name       string
		cfg        tlsconf.Config
		addr       string
		serverName string
		wantHost   string // for a *CertificateError; empty for success
		wantReason string
	}{
		{"private CA from CAPEM", withCA, goodAddr, "good.test", "", ""},
		{"private CA from CAFile", tlsconf.Config{CAFile: writeFile(t, "ca.PEM()", ca.PEM())}, goodAddr, "good.test", "", ""},
		{"private CA as RootCAs", tlsconf.Config{RootCAs: poolOf(ca.Cert)}, goodAddr, "good.test", "", ""},
		{"self-signed from CAPEM", tlsconf.Config{CAPEM: selfPEM}, selfAddr, "self.test", "", ""},
		{"self-signed from CAFile", tlsconf.Config{CAFile: writeFile(t, "self.pem", selfPEM)}, selfAddr, "self.test", "", ""},
		{"trailing dot", withCA, goodAddr, "good.test.", "", ""},
		{"IPv4 address", withCA, goodAddr, "127.0.0.1", "", ""},
		// The address is only the name checked: the connection stays on 127.0.0.1.
		{"bracketed IPv6 address", withCA, goodAddr, "[::1]", "", ""},

		{"self-signed, unknown", tlsconf.Config{}, selfAddr, "self.test", "self.test", `signed by unknown authority (issuer "CN=self")`},
		{"private CA, unknown", tlsconf.Config{}, goodAddr, "good.test", "good.test", `signed by unknown authority (issuer "CN=Test CA")`},
		{"private CA, other roots", tlsconf.Config{RootCAs: poolOf(lab.NewCA("Other").Cert)}, goodAddr, "good.test", "good.test", "signed by unknown authority"},
		{"wrong name", withCA, goodAddr, "bad.test", "bad.test", `not valid for name "bad.test" (valid for good.test, 127.0.0.1, ::1)`},
		{"wrong IP", withCA, goodAddr, "127.0.0.2", "127.0.0.2", `not valid for name "127.0.0.2"`},
		{"expired", withCA, expiredAddr, "old.test", "old.test", "expired or not yet valid: current time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := mustClient(t, tt.cfg)
			tc, raw, err := dial(t, t.Context(), base, tt.addr, tt.serverName)
			if tt.wantHost == "" {
				if err != nil {
					t.Fatalf("Handshake: %v", err)
				}
				if !tc.ConnectionState().HandshakeComplete {
					t.Error("handshake not complete")
				}
				return
			}
			if err == nil {
				t.Fatal("Handshake succeeded, want a certificate error")
			}
			if tc != nil {
				t.Error("Handshake returned a connection with its error")
			}
			assertClosed(t, raw)
			if !errors.Is(err, tlsconf.ErrCertificate) {
				t.Errorf("errors.Is(%v, ErrCertificate) = false", err)
			}
			ce, ok := errors.AsType[*tlsconf.CertificateError](err)
			if !ok {
				t.Fatalf("error %T %v, want a *CertificateError", err, err)
			}
			if ce.Host != tt.wantHost {
				t.Errorf("Host = %q, want %q", ce.Host, tt.wantHost)
			}
			if !strings.HasPrefix(ce.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to start with %q", ce.Reason, tt.wantReason)
			}
			if want := "tlsconf: certificate for " + tt.wantHost + ": " + ce.Reason; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if _, ok := errors.AsType[*tls.CertificateVerificationError](err); !ok {
				t.Error("the *tls.CertificateVerificationError is not reachable with errors.As")
			}
		})
	}
}

func TestMinVersion(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("Version CA")
	cert := ca.Issue("v.test")
	server := func(lo, hi uint16) string {
		addr, _ := startServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: lo, MaxVersion: hi})
		return addr
	}
	tls11 := server(tls.VersionTLS10, tls.VersionTLS11)
	tls12 := server(tls.VersionTLS12, tls.VersionTLS12)
	tls13 := server(tls.VersionTLS13, tls.VersionTLS13)

	// Control: the TLS 1.1 server does talk TLS 1.1 to a client that allows
	// it, so its refusal below comes from our minimum.
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		conn, err := tls.Dial("tcp", tls11, &tls.Config{MinVersion: tls.VersionTLS10, RootCAs: poolOf(ca.Cert), ServerName: "v.test"})
		if err != nil {
			t.Fatalf("plain crypto/tls client allowing TLS 1.0: %v", err)
		}
		defer conn.Close()
		if v := conn.ConnectionState().Version; v != tls.VersionTLS11 {
			t.Fatalf("control negotiated %s, want TLS 1.1", tls.VersionName(v))
		}
	})

	for _, tt := range []struct {
		name    string
		min     uint16
		addr    string
		want    uint16 // zero for a failure
		wantErr string
	}{
		{"default refuses TLS 1.1", 0, tls11, 0, "protocol version"},
		{"default accepts TLS 1.2", 0, tls12, tls.VersionTLS12, ""},
		{"default prefers TLS 1.3", 0, tls13, tls.VersionTLS13, ""},
		{"1.3 refuses TLS 1.2", tls.VersionTLS13, tls12, 0, "protocol version"},
		{"1.3 accepts TLS 1.3", tls.VersionTLS13, tls13, tls.VersionTLS13, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := mustClient(t, tlsconf.Config{MinVersion: tt.min, CAPEM: ca.PEM()})
			tc, raw, err := dial(t, t.Context(), base, tt.addr, "v.test")
			if tt.want == 0 {
				if err == nil {
					t.Fatalf("handshake succeeded with %s", tls.VersionName(tc.ConnectionState().Version))
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q, want it to mention %q", err, tt.wantErr)
				}
				if errors.Is(err, tlsconf.ErrCertificate) {
					t.Errorf("a version failure was reported as a certificate error: %v", err)
				}
				assertClosed(t, raw)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v := tc.ConnectionState().Version; v != tt.want {
				t.Errorf("negotiated %s, want %s", tls.VersionName(v), tls.VersionName(tt.want))
			}
		})
	}
}

func TestInsecureSkipVerify(t *testing.T) {
	t.Parallel()
	self := lab.SelfSigned(lab.CertSpec{Hosts: []string{"self.test"}})
	addr, _ := startServer(t, &tls.Config{Certificates: []tls.Certificate{self}})

	for _, tt := range []struct {
		name     string
		insecure bool
	}{
		{"verifying", false},
		{"insecure", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			base := mustClient(t, tlsconf.Config{InsecureSkipVerify: tt.insecure, Logger: logger})
			logged := buf.String()
			_, err := exchange(t, base, addr, "self.test")
			if !tt.insecure {
				if logged != "" {
					t.Errorf("logged %q without InsecureSkipVerify", logged)
				}
				if !errors.Is(err, tlsconf.ErrCertificate) {
					t.Errorf("error %v, want a certificate error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("insecure handshake with a self-signed server: %v", err)
			}
			if n := strings.Count(logged, "\n"); n != 1 || !strings.Contains(logged, "level=WARN") || !strings.Contains(logged, "InsecureSkipVerify") {
				t.Errorf("logged %q, want one warning about InsecureSkipVerify", logged)
			}
			if buf.String() != logged {
				t.Errorf("logged again while connecting: %q", strings.TrimPrefix(buf.String(), logged))
			}
		})
	}
}

func TestClientCertificate(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("mTLS CA")
	serverCert := ca.Issue("mtls.test")
	clientCert := ca.IssueSpec(lab.CertSpec{CommonName: "the client", Client: true})
	certPEM, keyPEM := lab.KeyPairPEM(clientCert)
	expired := ca.IssueSpec(lab.CertSpec{CommonName: "old client", Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	certFile := writeFile(t, "client.pem", certPEM)
	keyFile := writeFile(t, "client-key.pem", keyPEM)

	const (
		accepted = iota
		refused  // the server refuses, saying why: a *CertificateError
		failed   // the server refuses with a generic alert: not classified
	)
	for _, tt := range []struct {
		name    string
		version uint16
		cfg     tlsconf.Config
		want    int
		reason  string // for refused
	}{
		{"from files", tls.VersionTLS12, tlsconf.Config{CertFile: certFile, KeyFile: keyFile}, accepted, ""},
		{"from files", tls.VersionTLS13, tlsconf.Config{CertFile: certFile, KeyFile: keyFile}, accepted, ""},
		{"from Certificates", tls.VersionTLS12, tlsconf.Config{Certificates: []tls.Certificate{clientCert}}, accepted, ""},
		{"from Certificates", tls.VersionTLS13, tlsconf.Config{Certificates: []tls.Certificate{clientCert}}, accepted, ""},
		// RFC 5246, section 7.4.6: a TLS 1.2 server may only say
		// handshake_failure(40); RFC 8446, section 4.4.2.4: TLS 1.3 has
		// certificate_required(116).
		{"none", tls.VersionTLS12, tlsconf.Config{}, failed, ""},
		{"none", tls.VersionTLS13, tlsconf.Config{}, refused, "client certificate refused by the server (tls: certificate required)"},
		{"expired", tls.VersionTLS12, tlsconf.Config{Certificates: []tls.Certificate{expired}}, refused, "client certificate refused by the server (tls: expired certificate)"},
		{"expired", tls.VersionTLS13, tlsconf.Config{Certificates: []tls.Certificate{expired}}, refused, "client certificate refused by the server (tls: expired certificate)"},
	} {
		t.Run(tls.VersionName(tt.version)+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			addr, results := startServer(t, &tls.Config{
				Certificates: []tls.Certificate{serverCert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    poolOf(ca.Cert),
				MaxVersion:   tt.version,
			})
			cfg := tt.cfg
			cfg.CAPEM = ca.PEM()
			_, err := exchange(t, mustClient(t, cfg), addr, "mtls.test")
			res := <-results
			switch tt.want {
			case accepted:
				if err != nil {
					t.Fatal(err)
				}
				if res.err != nil {
					t.Fatalf("server: %v", res.err)
				}
				if len(res.state.PeerCertificates) == 0 {
					t.Fatal("the server saw no client certificate")
				}
				if cn := res.state.PeerCertificates[0].Subject.CommonName; cn != "the client" {
					t.Errorf("the server saw %q, want %q", cn, "the client")
				}
			case refused:
				if res.err == nil {
					t.Error("the server reports no error")
				}
				ce, ok := errors.AsType[*tlsconf.CertificateError](err)
				if !ok || !errors.Is(err, tlsconf.ErrCertificate) {
					t.Fatalf("error %v, want a certificate error", err)
				}
				if ce.Host != "mtls.test" || ce.Reason != tt.reason {
					t.Errorf("got Host %q, Reason %q; want %q", ce.Host, ce.Reason, tt.reason)
				}
			case failed:
				if res.err == nil {
					t.Error("the server reports no error")
				}
				if err == nil || errors.Is(err, tlsconf.ErrCertificate) {
					t.Errorf("error %v, want a failure that is not a certificate error", err)
				}
			}
		})
	}
}

func TestALPN(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("ALPN CA")
	cert := ca.Issue("alpn.test")
	httpAddr, _ := startServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	mailAddr, _ := startServer(t, &tls.Config{Certificates: []tls.Certificate{cert}})

	for _, tt := range []struct {
		name string
		alpn []string
		addr string
		want string
	}{
		{"h2 and http/1.1", []string{"h2", "http/1.1"}, httpAddr, "h2"},
		{"HTTP/1.1 only", []string{"http/1.1"}, httpAddr, "http/1.1"},
		{"none", nil, httpAddr, ""},
		{"server without ALPN", []string{"h2", "http/1.1"}, mailAddr, ""},
		{"mail", nil, mailAddr, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			state, err := exchange(t, mustClient(t, tlsconf.Config{CAPEM: ca.PEM()}, tt.alpn...), tt.addr, "alpn.test")
			if err != nil {
				t.Fatal(err)
			}
			if state.NegotiatedProtocol != tt.want {
				t.Errorf("negotiated %q, want %q", state.NegotiatedProtocol, tt.want)
			}
		})
	}
}

func TestForHost(t *testing.T) {
	t.Parallel()
	base := mustClient(t, tlsconf.Config{}, "h2", "http/1.1")
	for _, tt := range []struct {
		in, want string
	}{
		{"example.com", "example.com"},
		{"example.com.", "example.com"}, // RFC 6066, section 3: no trailing dot in SNI
		{"Example.COM", "Example.COM"},  // names compare without case; left as given
		{"192.0.2.1", "192.0.2.1"},
		{"[2001:db8::1]", "2001:db8::1"}, // RFC 3986, section 3.2.2
		{"2001:db8::1", "2001:db8::1"},
		{"", ""},
	} {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			c := tlsconf.ForHost(base, tt.in)
			if c == base {
				t.Fatal("ForHost returned base itself")
			}
			if c.ServerName != tt.want {
				t.Errorf("ServerName = %q, want %q", c.ServerName, tt.want)
			}
			if c.ClientSessionCache != base.ClientSessionCache {
				t.Error("the clone has another session cache")
			}
			if !slices.Equal(c.NextProtos, base.NextProtos) || c.MinVersion != base.MinVersion {
				t.Error("the clone lost settings of base")
			}
		})
	}
	if base.ServerName != "" {
		t.Errorf("base.ServerName = %q after ForHost, want it unchanged", base.ServerName)
	}

	named := tlsconf.ForHost(base, "first.test")
	if got := tlsconf.ForHost(named, "").ServerName; got != "first.test" {
		t.Errorf("an empty name replaced ServerName with %q", got)
	}

	defer func() {
		if recover() == nil {
			t.Error("ForHost(nil, ...) did not panic")
		}
	}()
	tlsconf.ForHost(nil, "x.test")
}

// Handshake must not modify the shared base configuration.
func TestHandshakeKeepsBase(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("Base CA")
	cert := ca.Issue("base.test")
	addr, _ := startServer(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	base := mustClient(t, tlsconf.Config{CAPEM: ca.PEM()}, "h2", "http/1.1")
	snapshot := base.Clone()

	tc, _, err := dial(t, t.Context(), base, addr, "base.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := tc.ConnectionState().ServerName; got != "base.test" {
		t.Errorf("connection ServerName = %q", got)
	}
	if base.ServerName != snapshot.ServerName || !slices.Equal(base.NextProtos, snapshot.NextProtos) ||
		base.MinVersion != snapshot.MinVersion || !base.RootCAs.Equal(snapshot.RootCAs) {
		t.Error("Handshake modified base")
	}
}

func TestSessionResumption(t *testing.T) {
	t.Parallel()
	ca := lab.NewCA("Resume CA")
	cert := ca.Issue("resume.test")
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			t.Parallel()
			addr, _ := startServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: version})
			base := mustClient(t, tlsconf.Config{CAPEM: ca.PEM()})

			for i, want := range []bool{false, true, true} {
				state, err := exchange(t, base, addr, "resume.test")
				if err != nil {
					t.Fatal(err)
				}
				if state.Version != version {
					t.Fatalf("negotiated %s", tls.VersionName(state.Version))
				}
				if state.DidResume != want {
					t.Errorf("connection %d: DidResume = %v, want %v", i+1, state.DidResume, want)
				}
			}

			// Another built configuration has its own, empty, cache.
			state, err := exchange(t, mustClient(t, tlsconf.Config{CAPEM: ca.PEM()}), addr, "resume.test")
			if err != nil {
				t.Fatal(err)
			}
			if state.DidResume {
				t.Error("a new configuration resumed a session of another one")
			}
		})
	}
}

// A server that accepts and never answers must not hold Handshake past ctx.
func TestHandshakeContext(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		ctx  func(t *testing.T, accepted <-chan struct{}) context.Context
		want error
	}{
		{
			name: "canceled",
			ctx: func(t *testing.T, accepted <-chan struct{}) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				go func() {
					select {
					case <-accepted:
					case <-ctx.Done():
					}
					cancel()
				}()
				return ctx
			},
			want: context.Canceled,
		},
		{
			name: "deadline",
			ctx: func(t *testing.T, _ <-chan struct{}) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, accepted := startStallServer(t)
			ctx := tt.ctx(t, accepted)
			base := mustClient(t, tlsconf.Config{})

			start := time.Now()
			type result struct {
				raw net.Conn
				err error
			}
			done := make(chan result, 1)
			go func() {
				var d net.Dialer
				raw, err := d.DialContext(t.Context(), "tcp", addr)
				if err == nil {
					_, err = tlsconf.Handshake(ctx, raw, base, "stall.test")
				}
				done <- result{raw, err}
			}()
			var res result
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Handshake still blocked 10s after its context ended")
			}
			if !errors.Is(res.err, tt.want) {
				t.Fatalf("error %v, want %v", res.err, tt.want)
			}
			if res.raw == nil {
				t.Fatal("dial failed")
			}
			if tt.want == context.DeadlineExceeded {
				if ne, ok := errors.AsType[net.Error](res.err); !ok || !ne.Timeout() {
					t.Errorf("error %v is not a net.Error with Timeout()", res.err)
				}
			}
			assertClosed(t, res.raw)
			t.Logf("returned after %v", time.Since(start))
		})
	}
}

// The configuration works as net/http's TLSClientConfig, negotiates HTTP/2,
// and AsCertificateError finds a certificate failure inside a *url.Error.
func TestHTTPTransport(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	t.Cleanup(srv.Close)

	get := func(t *testing.T, cfg tlsconf.Config) (string, error) {
		var protocols http.Protocols
		protocols.SetHTTP1(true)
		protocols.SetHTTP2(true)
		tr := &http.Transport{
			TLSClientConfig: mustClient(t, cfg, "h2", "http/1.1"),
			Protocols:       &protocols,
		}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}

	t.Run("trusted", func(t *testing.T) {
		t.Parallel()
		proto, err := get(t, tlsconf.Config{RootCAs: poolOf(srv.Certificate())})
		if err != nil {
			t.Fatal(err)
		}
		if proto != "HTTP/2.0" {
			t.Errorf("server saw %q, want HTTP/2.0", proto)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		t.Parallel()
		_, err := get(t, tlsconf.Config{RootCAs: poolOf(lab.NewCA("Not httptest").Cert)})
		if err == nil {
			t.Fatal("request succeeded")
		}
		u, _ := url.Parse(srv.URL)
		err = tlsconf.AsCertificateError(u.Hostname(), err)
		ce, ok := errors.AsType[*tlsconf.CertificateError](err)
		if !ok {
			t.Fatalf("error %T %v, want a *CertificateError", err, err)
		}
		if ce.Host != "127.0.0.1" || !strings.HasPrefix(ce.Reason, "signed by unknown authority") {
			t.Errorf("got Host %q, Reason %q", ce.Host, ce.Reason)
		}
		if _, ok := errors.AsType[*url.Error](err); !ok {
			t.Error("the *url.Error is no longer reachable")
		}
	})
}
