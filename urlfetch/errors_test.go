package urlfetch_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
)

// rawServer is a loopback TCP server that reads a request's head and then
// runs reply on the connection, for replies net/http's server never makes.
func rawServer(t *testing.T, reply func(c net.Conn)) string {
	t.Helper()
	return lab.NewServer(t, func(_ context.Context, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		reply(c)
	}).Addr()
}

// rawFixture is a Transport whose connections all go to addr.
func rawFixture(t *testing.T, addr string, opts ...func(*urlfetch.Transport)) (*urlfetch.Transport, *lab.Connector) {
	conn := &lab.Connector{Target: addr}
	tr := &urlfetch.Transport{
		Dialer: sockets.Dialer{
			Resolver: lab.NewResolver(map[string][]string{publicHost: {publicAddr}}),
			Connect:  conn.Connect,
		},
	}
	for _, o := range opts {
		o(tr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr, conn
}

// waitClose waits until the client closes c.
func waitClose(c net.Conn) { io.Copy(io.Discard, c) }

func TestConnectionClosed(t *testing.T) {
	t.Run("before the reply", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn) {})
		tr, _ := rawFixture(t, addr)
		_, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+":8080/"))
		mustKind(t, err, urlfetch.ErrConnectionClosed)
		if final(err) {
			t.Error("a closed connection is final")
		}
	})
	t.Run("in the body", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
		})
		tr, _ := rawFixture(t, addr)
		resp, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+":8080/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		mustKind(t, err, urlfetch.ErrConnectionClosed)
		if string(b) != "0123456789" {
			t.Errorf("read %q before the error", b)
		}
	})
	t.Run("in a chunked body", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		})
		tr, _ := rawFixture(t, addr)
		resp, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+":8080/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		mustKind(t, err, urlfetch.ErrConnectionClosed)
	})
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there any more
		tr, _ := rawFixture(t, addr)
		_, err = tr.RoundTrip(mustGet(t, "http://"+publicHost+":8080/"))
		mustKind(t, err, urlfetch.ErrConnectionClosed)
	})
}

func TestMalformedReply(t *testing.T) {
	replies := map[string]string{
		"garbage":            "garbage\r\n\r\n",
		"bad version":        "HTTP/x.y 200 OK\r\n\r\n",
		"bad status":         "HTTP/1.1 2x0 OK\r\n\r\n",
		"bad header":         "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
		"bad content length": "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
	}
	for name, reply := range replies {
		t.Run(name, func(t *testing.T) {
			addr := rawServer(t, func(c net.Conn) {
				io.WriteString(c, reply)
				waitClose(c) // the client, not the server, ends it
			})
			tr, _ := rawFixture(t, addr)
			_, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+":8080/"))
			mustKind(t, err, urlfetch.ErrMalformedReply)
		})
	}
	t.Run("bad chunk", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n")
			waitClose(c)
		})
		tr, _ := rawFixture(t, addr)
		resp, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+":8080/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		mustKind(t, err, urlfetch.ErrMalformedReply)
	})
	// https to a plain server is a certificate error, as every failure of
	// TLS is: see TestTLSFailuresAreCertificateErrors.
}

// quiet is a logger that drops the InsecureSkipVerify warning.
var quiet = slog.New(slog.DiscardHandler)

func TestCertificates(t *testing.T) {
	srv := newServer(t, okHandler, true) // httptest's self-signed certificate
	t.Run("refused by default", func(t *testing.T) {
		f := newFixture(t, srv)
		_, err := f.get(t, srv.URL)
		mustKind(t, err, tlsconf.ErrCertificate)
		if !errors.Is(err, tlsconf.ErrCertificate) {
			t.Errorf("error %v does not match tlsconf.ErrCertificate", err)
		}
		ce, ok := errors.AsType[*tlsconf.CertificateError](err)
		if !ok || ce.Host != "127.0.0.1" {
			t.Errorf("error %v: want a *tlsconf.CertificateError for 127.0.0.1", err)
		}
		if _, ok := errors.AsType[x509.UnknownAuthorityError](err); !ok {
			t.Errorf("error %v: no x509.UnknownAuthorityError", err)
		}
		if !final(err) {
			t.Error("a certificate error is not final")
		}
	})
	t.Run("name mismatch", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		f := newFixture(t, srv, func(tr *urlfetch.Transport) { tr.TLS.RootCAs = pool })
		_, err := f.get(t, "https://"+publicHost+"/") // the certificate is for example.com
		mustKind(t, err, tlsconf.ErrCertificate)
		if _, ok := errors.AsType[x509.HostnameError](err); !ok {
			t.Errorf("error %v: no x509.HostnameError", err)
		}
	})
	t.Run("accepted with InsecureSkipVerify", func(t *testing.T) {
		f := newFixture(t, srv, func(tr *urlfetch.Transport) {
			tr.TLS = tlsconf.Config{InsecureSkipVerify: true, Logger: quiet}
		})
		resp, err := f.get(t, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.TLS == nil || resp.TLS.NegotiatedProtocol == "h2" {
			t.Errorf("TLS state %+v, want HTTP/1.1 over TLS", resp.TLS)
		}
	})
	t.Run("accepted with the CA", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		f := newFixture(t, srv, func(tr *urlfetch.Transport) { tr.TLS.RootCAs = pool })
		resp, err := f.get(t, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, err := urlfetch.ReadAll(resp)
		if err != nil || string(b) != "ok" {
			t.Fatalf("body %q, %v", b, err)
		}
		if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("TLS state %+v", resp.TLS)
		}
	})
	t.Run("bad TLS configuration", func(t *testing.T) {
		tr := &urlfetch.Transport{TLS: tlsconf.Config{CAFile: t.TempDir() + "/missing.pem"}, Dialer: noNetwork}
		_, err := tr.RoundTrip(mustGet(t, "https://"+publicHost+"/"))
		mustKind(t, err, urlfetch.ErrConfig)
	})
}

// TestBodyClosedOnError checks that the request body is closed on every
// way a RoundTrip can fail.
func TestBodyClosedOnError(t *testing.T) {
	tlsSrv := newServer(t, okHandler, true)
	garbage := rawServer(t, func(c net.Conn) {
		io.WriteString(c, "garbage\r\n\r\n")
		waitClose(c)
	})
	hangup := rawServer(t, func(c net.Conn) {})
	tests := []struct {
		name, url string
		size      int64
		target    string // the Connector's target; "" for the TLS server
		opts      func(*urlfetch.Transport)
		kind      error
	}{
		{"scheme", "ftp://" + publicHost + "/", 5, "", nil, urlfetch.ErrInvalidURL},
		{"port", "http://" + publicHost + ":1000/", 5, "", nil, urlfetch.ErrInvalidURL},
		{"url length", "http://" + publicHost + "/" + strings.Repeat("a", urlfetch.MaxURLLength), 5, "", nil, urlfetch.ErrInvalidURL},
		{"payload", "http://" + publicHost + "/", urlfetch.MaxRequestBody + 1, "", nil, urlfetch.ErrPayloadTooLarge},
		{"denied", "http://" + privateHost + "/", 5, "", nil, sockets.ErrDenied},
		{"dns", "http://" + unknownHost + "/", 5, "", nil, urlfetch.ErrDNS},
		{"config", "http://" + publicHost + "/", 5, "", func(tr *urlfetch.Transport) { tr.Deadline = -1 }, urlfetch.ErrConfig},
		{"certificate", "https://127.0.0.1/", 5, "", nil, tlsconf.ErrCertificate},
		{"malformed", "http://" + publicHost + "/", 5, garbage, nil, urlfetch.ErrMalformedReply},
		{"closed", "http://" + publicHost + "/", 5, hangup, nil, urlfetch.ErrConnectionClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = tlsSrv.addr()
			}
			conn := &lab.Connector{Target: target}
			tr := &urlfetch.Transport{
				Dialer: sockets.Dialer{
					Policy:   loopbackPolicy,
					Resolver: lab.NewResolver(map[string][]string{publicHost: {publicAddr}, privateHost: {privateAddr}}),
					Connect:  conn.Connect,
				},
			}
			if tt.opts != nil {
				tt.opts(tr)
			}
			defer tr.CloseIdleConnections()
			for _, known := range []bool{true, false} {
				body := newBody(tt.size)
				req, _ := http.NewRequest(http.MethodPost, tt.url, unknownLength{body})
				if known {
					req.ContentLength = tt.size
				}
				_, err := tr.RoundTrip(req)
				mustKind(t, err, tt.kind)
				if !body.closed.Load() {
					t.Errorf("known length %v: request body not closed", known)
				}
			}
		})
	}
}
