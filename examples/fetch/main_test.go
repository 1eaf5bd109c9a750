package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/transport"
)

// TestDemo runs the offline demonstration that the README's first command
// runs, and checks each thing it promises to show.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := demo(context.Background(), &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`urlfetch GET http://www.example.com/: 200 OK`,
		`sockets  GET http://www.example.com/: 200 OK`,
		`urlfetch GET http://intranet.example/: refused by rule "private (RFC 1918)" (address 10.0.0.1:80)`,
		`sockets  GET http://intranet.example/: refused by rule "private (RFC 1918)" (address 10.0.0.1:80)`,
		`urlfetch GET http://storage.example/: 200 OK`,
		`sockets  GET http://storage.example/: refused by rule "google range"`,
		`sockets  GET http://www.example.com:25/: refused by rule "smtp port 25" (host www.example.com, before any lookup)`,
		`urlfetch POST 11 MiB: refused by urlfetch: request body over 10 MiB, nothing sent`,
		`connections made: 3,`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "invalid AddrPort") {
		t.Error("a refusal made before any lookup prints the zero address")
	}
	if t.Failed() {
		t.Log(out.String())
	}
}

// setBackend sets the environment switch for a test: nil leaves
// GAE_USE_SOCKETS_HTTPLIB unset (urlfetch), a value sets it (sockets).
func setBackend(t *testing.T, value *string) {
	t.Helper()
	t.Setenv(transport.EnvSockets, "")
	if value == nil {
		if err := os.Unsetenv(transport.EnvSockets); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Setenv(transport.EnvSockets, *value)
}

// TestCLIErrorOnce runs the command on a URL each backend refuses: the
// refusal is written once, in fetch's line on stdout, and not again on
// stderr; the exit status is 1. A refusal made before any lookup names the
// host, not a zero address; a refused loopback server is never reached.
func TestCLIErrorOnce(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, tc := range []struct {
		name  string
		value *string
		url   string
		want  string
	}{
		{"urlfetch/port 25", nil, "http://www.example.com:25/", `urlfetch GET http://www.example.com:25/: refused by rule "smtp port 25" (host www.example.com, before any lookup)`},
		{"sockets/port 25", new(""), "http://www.example.com:25/", `sockets  GET http://www.example.com:25/: refused by rule "smtp port 25" (host www.example.com, before any lookup)`},
		{"urlfetch/loopback", nil, srv.URL + "/", `urlfetch GET ` + srv.URL + `/: refused by rule "loopback (RFC 1122, RFC 4291)" (address ` + srv.Listener.Addr().String() + `)`},
		{"sockets/loopback", new("1"), srv.URL + "/", `sockets  GET ` + srv.URL + `/: refused by rule "loopback (RFC 1122, RFC 4291)" (address ` + srv.Listener.Addr().String() + `)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setBackend(t, tc.value)
			var stdout, stderr strings.Builder
			if code := cli([]string{"-timeout", "10s", tc.url}, &stdout, &stderr); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if !strings.HasPrefix(stdout.String(), tc.want) || strings.Count(stdout.String(), "\n") != 1 {
				t.Errorf("stdout:\n%s\nwant one line starting %s", stdout.String(), tc.want)
			}
			if stderr.Len() != 0 {
				t.Errorf("the error was written again on stderr: %s", stderr.String())
			}
			if strings.Contains(stdout.String(), "invalid AddrPort") {
				t.Errorf("stdout shows a zero address: %s", stdout.String())
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests, want none", n)
	}
}

// TestCLIOtherErrors: an error fetch does not report in a line is written
// once, on stderr; a usage error exits with 2.
func TestCLIOtherErrors(t *testing.T) {
	setBackend(t, nil)
	var stdout, stderr strings.Builder
	if code := cli([]string{"http://[::1"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if stdout.Len() != 0 || !strings.HasPrefix(stderr.String(), "fetch: ") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("stdout %q, stderr %q: want the error once, on stderr", stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := cli([]string{"http://a.example/", "http://b.example/"}, &stdout, &stderr); code != 2 {
		t.Errorf("two URLs: exit status %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "usage: fetch") {
		t.Errorf("two URLs: stderr %q, want the usage", stderr.String())
	}
}
