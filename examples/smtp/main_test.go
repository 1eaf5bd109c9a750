package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/tlsconf"
)

const (
	serverName = "smtp.example.com"
	publicIP   = "93.184.216.34" // a public address; the Connector sends it to loopback
	user       = "sender@example.com"
	password   = "app-password"
)

// delivery is one message as the server received it.
type delivery struct {
	from    string
	to      []string
	data    []byte
	authTLS bool // the client authenticated over TLS
}

// mailServer is a real SMTP submission server on loopback: STARTTLS with a
// certificate for serverName, AUTH PLAIN offered only after STARTTLS, and
// MAIL refused until the client has authenticated.
type mailServer struct {
	addr  string
	roots *x509.CertPool

	mu        sync.Mutex
	delivered []delivery
	accepts   int
}

func startServer(t *testing.T) *mailServer {
	t.Helper()
	cert, roots := socketstest.NewCert(serverName)
	ms := &mailServer{roots: roots}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &session{ms: ms, conn: c}, nil
	}))
	srv.Domain = serverName
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.AllowInsecureAuth = false
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(countingListener{ln, ms}) }()
	t.Cleanup(func() {
		srv.Close()
		ln.Close() // in case Serve had not registered it yet when Close ran
		if err := <-done; err != nil {
			t.Errorf("smtp server: %v", err)
		}
	})
	return ms
}

func (ms *mailServer) deliveries() []delivery {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]delivery(nil), ms.delivered...)
}

func (ms *mailServer) acceptCount() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.accepts
}

// countingListener counts the connections the server accepts.
type countingListener struct {
	net.Listener
	ms *mailServer
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.ms.mu.Lock()
		l.ms.accepts++
		l.ms.mu.Unlock()
	}
	return c, err
}

// session is one SMTP session; go-smtp calls it from one goroutine.
type session struct {
	ms      *mailServer
	conn    *gosmtp.Conn
	authed  bool
	authTLS bool
	from    string
	to      []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, gosmtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, pass string) error {
		if identity != "" && identity != username || username != user || pass != password {
			return gosmtp.ErrAuthFailed
		}
		_, s.authTLS = s.conn.TLSConnectionState()
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if !s.authed {
		return gosmtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if !s.authed {
		return gosmtp.ErrAuthRequired
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ms.mu.Lock()
	s.ms.delivered = append(s.ms.delivered, delivery{from: s.from, to: s.to, data: data, authTLS: s.authTLS})
	s.ms.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// dialer resolves names through a table and connects every allowed address
// to target on loopback, under the default policy.
func dialer(target string, hosts map[string][]string) (*socketapi.Dialer, *socketstest.Connector) {
	conn := &socketstest.Connector{Target: target}
	return &socketapi.Dialer{Dialer: sockets.Dialer{
		Resolver: socketstest.NewResolver(hosts),
		Connect:  conn.Connect,
	}}, conn
}

func TestRunDelivers(t *testing.T) {
	ms := startServer(t)
	d, connector := dialer(ms.addr, map[string][]string{serverName: {publicIP}})
	cfg := config{
		Addr:     serverName + ":587",
		User:     user,
		Password: password,
		To:       []string{"alice@example.net", "bob@example.org"},
		Subject:  "Grüße from the test",
		// A line with a leading dot checks dot-stuffing both ways; the
		// bare LF line endings must arrive as CRLF.
		Body: "Hello,\n.this line starts with a dot\n..and this one with two\n\nBye.\n",
		TLS:  tlsconf.Config{RootCAs: ms.roots},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, d, cfg, &out); err != nil {
		t.Fatalf("run: %v", err)
	}

	got := ms.deliveries()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	m := got[0]
	if !m.authTLS {
		t.Error("the client authenticated without TLS")
	}
	if m.from != user || strings.Join(m.to, ",") != "alice@example.net,bob@example.org" {
		t.Errorf("envelope from %q to %q", m.from, m.to)
	}
	// The message carries its own Date; rebuilding it from that date must
	// give the very bytes that arrived.
	parsed, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, m.data)
	}
	date, err := parsed.Header.Date()
	if err != nil {
		t.Fatalf("Date header: %v", err)
	}
	cfg.From = user
	if want := compose(cfg, date); !bytes.Equal(m.data, want) {
		t.Errorf("message changed in transit:\n got %q\nwant %q", m.data, want)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
	if err != nil || subject != cfg.Subject {
		t.Errorf("Subject decodes to %q (%v), want %q", subject, err, cfg.Subject)
	}
	if a := connector.Attempts(); len(a) != 1 || a[0].String() != publicIP+":587" {
		t.Errorf("connections to %v, want one to %s:587", a, publicIP)
	}
	if !strings.Contains(out.String(), "sent ") {
		t.Errorf("output %q does not report the message as sent", out.String())
	}
}

func TestPort25Refused(t *testing.T) {
	ms := startServer(t)
	d, connector := dialer(ms.addr, map[string][]string{"mail.example.com": {publicIP}})
	cfg := config{
		Addr:     "mail.example.com:25",
		User:     user,
		Password: password,
		To:       []string{"alice@example.net"},
		TLS:      tlsconf.Config{RootCAs: ms.roots},
	}
	err := run(context.Background(), d, cfg, io.Discard)
	var denied *sockets.DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("run to port 25: %v, want a *sockets.DeniedError", err)
	}
	if denied.Rule != sockets.RuleSMTP || !errors.Is(err, sockets.ErrDenied) {
		t.Errorf("refused by rule %q, want %q", denied.Rule, sockets.RuleSMTP)
	}
	if a := connector.Attempts(); len(a) != 0 {
		t.Errorf("connections attempted: %v, want none", a)
	}
	if n := ms.acceptCount(); n != 0 {
		t.Errorf("server accepted %d connections, want none", n)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	ms := startServer(t)
	d, _ := dialer(ms.addr, map[string][]string{serverName: {publicIP}})
	cfg := config{
		Addr:     serverName + ":587",
		User:     user,
		Password: password,
		To:       []string{"alice@example.net"},
		// A fresh authority that did not sign the server's certificate.
		TLS: tlsconf.Config{RootCAs: otherRoots(t)},
	}
	err := run(context.Background(), d, cfg, io.Discard)
	if !errors.Is(err, tlsconf.ErrCertificate) {
		t.Fatalf("run with an untrusted certificate: %v, want tlsconf.ErrCertificate", err)
	}
	if got := ms.deliveries(); len(got) != 0 {
		t.Errorf("server received %d messages, want none", len(got))
	}
}

func otherRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	_, roots := socketstest.NewCert(serverName)
	return roots
}
