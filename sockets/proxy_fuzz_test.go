package sockets_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
)

// FuzzProxyReply feeds a proxy's reply to the CONNECT exchange: whatever
// the bytes, it never panics or hangs; it opens the tunnel only on a 2xx
// reply, and then hands over exactly the bytes that followed the reply's
// header; otherwise it fails with a *ProxyError carrying a status it read,
// made printable, or with an error of its own (the exchange broke).
func FuzzProxyReply(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\n",                                             // Squid
		"HTTP/1.0 200 OK\r\n\r\n220 smtp.example.com ESMTP\r\n",                                   // a greeting with the reply
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",                                    // an interim reply first
		"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=x\r\n\r\n", // a challenge
		"HTTP/1.1 407 Request rejected by proxy\r\nX-Smokescreen-Error: denied\r\n\r\n",           // smokescreen's refusal
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!",                                // a refusal with a body
		"HTTP/1.1 502 Bad\x00Gate\x7fway\r\n\r\n",                                                 // control characters in the reason
		"HTTP/1.1 200\r\n\r\n",     // no reason phrase
		"HTTP/1.1 200 OK\n\n",      // bare LF
		"HTTP/1.1 2000 OK\r\n\r\n", // a four-digit status
		"HTTP/2 200\r\n\r\n",       // not HTTP/1.x
		"HTTP/1.1 200 OK\r\nX: y",  // cut short
		"SSH-2.0-OpenSSH_9.2\r\n",  // not HTTP
		"",                         // closed at once
	} {
		f.Add([]byte(seed))
	}
	proxy := &url.URL{Scheme: "http", Host: "proxy.example:3128"}
	target := netip.MustParseAddrPort("93.184.216.34:443")
	f.Fuzz(func(t *testing.T, reply []byte) {
		client, server := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			defer server.Close()
			br := bufio.NewReader(server)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\r\n" {
					break
				}
			}
			server.Write(reply)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := sockets.ConnectTunnel(ctx, client, proxy, target)
		if err != nil {
			client.Close()
			<-served
			if conn != nil {
				t.Fatal("a connection and an error")
			}
			if ctx.Err() != nil {
				t.Fatalf("the exchange ran to its deadline: %v", err)
			}
			var pe *sockets.ProxyError
			if errors.As(err, &pe) {
				if pe.Kind != sockets.ProxyRefused && pe.Kind != sockets.ProxyAuthRequired || pe.StatusCode < 100 || pe.StatusCode > 999 || pe.StatusCode/100 == 2 {
					t.Fatalf("%#v", pe)
				}
				if strings.IndexFunc(pe.Status, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 || len(pe.Status) > 4+128 {
					t.Fatalf("status %q", pe.Status)
				}
			}
			return
		}
		rest, err := io.ReadAll(conn)
		conn.Close()
		<-served
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("reading the tunnel: %v", err)
		}
		if !bytes.HasPrefix(reply, []byte("HTTP/1.")) || !bytes.HasSuffix(reply, rest) || len(rest) == len(reply) {
			t.Fatalf("tunnel opened on %q, handing over %q", reply, rest)
		}
		head := reply[:len(reply)-len(rest)]
		if !bytes.HasSuffix(head, []byte("\n\n")) && !bytes.HasSuffix(head, []byte("\n\r\n")) {
			t.Fatalf("the tunnel's bytes %q do not follow the end of a header (%q)", rest, head)
		}
	})
}

// FuzzParseProxy checks ParseProxy and CheckProxy: never a panic; an
// accepted URL is an http or https URL with a host, a port from 1 to
// 65535 or none, and no path, query or fragment; a refusal is a
// ProxyInvalid whose message does not depend on the credentials.
func FuzzParseProxy(f *testing.F) {
	for _, seed := range []string{
		"http://proxy.example:3128",
		"https://user:pass@proxy.example",
		"http://[2001:db8::1]:8080/",
		"http://127.0.0.1:0",         // port 0
		"http://proxy.example:65536", // past the last port
		"socks5://u:p@proxy:1080",    // another scheme
		"u:p@proxy:3128",             // no scheme: "u" is read as one
		"http://proxy/path?q#f",      // path, query, fragment
		"http://0x7f.1:3128",         // an inet_aton form, not a name
		"http://%41:80",              // an escaped host
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := sockets.ParseProxy(raw)
		if err != nil {
			var pe *sockets.ProxyError
			if !errors.As(err, &pe) || pe.Kind != sockets.ProxyInvalid || u != nil {
				t.Fatalf("%q: %#v, %v", raw, err, u)
			}
		} else {
			if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
				t.Fatalf("%q accepted as %#v", raw, u)
			}
			if p := u.Port(); p != "" {
				if n, err := netip.ParseAddrPort("127.0.0.1:" + p); err != nil || n.Port() == 0 {
					t.Fatalf("%q accepted with port %q", raw, p)
				}
			}
		}
		parsed, perr := url.Parse(raw)
		if perr != nil {
			return
		}
		other := *parsed
		other.User = url.UserPassword("someone-else", "another-password")
		none := *parsed
		none.User = nil
		e1, e2, e3 := sockets.CheckProxy(parsed), sockets.CheckProxy(&other), sockets.CheckProxy(&none)
		if (e1 == nil) != (err == nil) || (e1 == nil) != (e2 == nil) || (e1 == nil) != (e3 == nil) {
			t.Fatalf("%q: the credentials change the verdict: %v, %v, %v, ParseProxy %v", raw, e1, e2, e3, err)
		}
		if e1 != nil && (e1.Error() != e2.Error() || e1.Error() != e3.Error()) {
			t.Fatalf("%q: the message depends on the credentials: %q, %q, %q", raw, e1, e2, e3)
		}
	})
}
