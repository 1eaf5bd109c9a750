package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/tlsconf"
)

const (
	serverName = "imap.example.com"
	publicIP   = "93.184.216.34" // a public address; the Connector sends it to loopback
	user       = "reader@example.com"
	password   = "app-password"
)

// startServer runs a real IMAP server over TLS on loopback, with one user
// whose INBOX holds n messages, "Message 1" (the oldest) to "Message n".
// It returns the server's address and the CA that signed its certificate.
func startServer(t *testing.T, n int) (addr string, roots *x509.CertPool) {
	t.Helper()
	cert, roots := socketstest.NewCert(serverName)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}

	u := imapmemserver.NewUser(user, password)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		date := day.AddDate(0, 0, i)
		msg := fmt.Sprintf("From: Sender %d <sender%d@example.net>\r\nTo: <%s>\r\nSubject: Message %d\r\nDate: %s\r\n\r\nBody %d\r\n",
			i, i, user, i, date.Format(time.RFC1123Z), i)
		if _, err := u.Append("INBOX", bytes.NewReader([]byte(msg)), &imap.AppendOptions{Time: date}); err != nil {
			t.Fatal(err)
		}
	}
	mem := imapmemserver.New()
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: false, // LOGIN only over TLS, as every listener here is
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(tls.NewListener(ln, serverTLS)) }()
	t.Cleanup(func() {
		srv.Close()
		ln.Close() // in case Serve had not registered it yet when Close ran
		<-done     // Serve's error only says that the server was closed
	})
	return ln.Addr().String(), roots
}

// dialer resolves serverName to a public address and connects it to the
// loopback server, under the default policy.
func dialer(target string) (*socketapi.Dialer, *socketstest.Connector) {
	conn := &socketstest.Connector{Target: target}
	return &socketapi.Dialer{Dialer: sockets.Dialer{
		Resolver: socketstest.NewResolver(map[string][]string{serverName: {publicIP}}),
		Connect:  conn.Connect,
	}}, conn
}

func TestRunListsNewest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		messages int
		count    int
		want     []int // message numbers listed, in order
	}{
		{"newest three of five", 5, 3, []int{5, 4, 3}},
		{"fewer than asked", 2, 10, []int{2, 1}},
		{"empty mailbox", 0, 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, roots := startServer(t, tc.messages)
			d, connector := dialer(addr)
			cfg := config{
				Addr:     serverName + ":993",
				User:     user,
				Password: password,
				Count:    tc.count,
				TLS:      tlsconf.Config{RootCAs: roots},
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out strings.Builder
			if err := run(ctx, d, cfg, &out); err != nil {
				t.Fatalf("run: %v", err)
			}

			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if want := fmt.Sprintf("INBOX: %d messages", tc.messages); lines[0] != want {
				t.Errorf("first line %q, want %q", lines[0], want)
			}
			if len(lines)-1 != len(tc.want) {
				t.Fatalf("listed %d messages, want %d:\n%s", len(lines)-1, len(tc.want), out.String())
			}
			for i, n := range tc.want {
				date := time.Date(2026, 11, 1+n, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
				want := fmt.Sprintf("%4d  %s  %-28s  Message %d", n, date, fmt.Sprintf("sender%d@example.net", n), n)
				if lines[i+1] != want {
					t.Errorf("line %d:\n got %q\nwant %q", i+1, lines[i+1], want)
				}
			}
			if a := connector.Attempts(); len(a) != 1 || a[0].String() != publicIP+":993" {
				t.Errorf("connections to %v, want one to %s:993", a, publicIP)
			}
		})
	}
}

func TestRunWrongPassword(t *testing.T) {
	addr, roots := startServer(t, 1)
	d, _ := dialer(addr)
	cfg := config{Addr: serverName + ":993", User: user, Password: "wrong", TLS: tlsconf.Config{RootCAs: roots}}
	var out strings.Builder
	err := run(context.Background(), d, cfg, &out)
	var imapErr *imap.Error
	if !errors.As(err, &imapErr) || imapErr.Type != imap.StatusResponseTypeNo {
		t.Fatalf("run with a wrong password: %v, want an IMAP NO reply", err)
	}
	if out.Len() != 0 {
		t.Errorf("output %q after a failed login, want none", out.String())
	}
}

func TestRunUntrustedCertificate(t *testing.T) {
	addr, _ := startServer(t, 1)
	_, otherRoots := socketstest.NewCert(serverName) // a CA that did not sign the server's certificate
	d, _ := dialer(addr)
	cfg := config{Addr: serverName + ":993", User: user, Password: password, TLS: tlsconf.Config{RootCAs: otherRoots}}
	err := run(context.Background(), d, cfg, &strings.Builder{})
	if !errors.Is(err, tlsconf.ErrCertificate) {
		t.Fatalf("run with an untrusted certificate: %v, want tlsconf.ErrCertificate", err)
	}
}
