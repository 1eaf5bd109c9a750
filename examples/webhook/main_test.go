package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
)

// TestDemo runs the offline demonstration and checks each thing it
// promises to show: a delivery, refusals that name the rule and never the
// resolved address to the caller while the log has it, a timeout, a DNS
// failure, and no connection but to the two public receivers.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := demo(context.Background(), &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		`caller sees: POST http://hooks.example.com/incoming: delivered, 204 No Content`,
		`caller sees: POST http://intranet.example.com/admin: destination not allowed: sockets: tcp to "intranet.example.com" refused: private (RFC 1918)`,
		`caller sees: POST http://metadata.example.com/computeMetadata/v1/: destination not allowed: sockets: tcp to "metadata.example.com" refused: link-local`,
		`caller sees: POST http://10.0.0.5/: destination not allowed: sockets: tcp to "10.0.0.5" refused: private (RFC 1918)`,
		`caller sees: POST http://slow.example.com/incoming: the receiver did not answer in time`,
		`caller sees: POST http://unknown.example.com/incoming: the receiver's host name did not resolve`,
		`class=refused err="Post \"http://intranet.example.com/admin\": sockets: tcp to 10.0.0.5:80 (host \"intranet.example.com\") refused: private (RFC 1918)" rule=private`,
		`rule=link_local`,
		`class=timeout`,
		`class=dns`,
		`receiver got 1 webhook(s): [{"event":"invoice.paid","id":42}]`,
		`connections made: [93.184.216.34:80 93.184.216.35:80]`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, "caller sees: POST http://intranet") && strings.Contains(line, "10.0.0.5") ||
			strings.HasPrefix(line, "caller sees: POST http://metadata") && strings.Contains(line, "169.254") {
			t.Errorf("the caller is told a resolved address: %s", line)
		}
	}
	if t.Failed() {
		t.Log(s)
	}
}

// TestClassify: the errors the webhook meets, wrapped in *url.Error as
// http.Client returns them, fall in the classes its messages and logs
// rely on (transport.Classify).
func TestClassify(t *testing.T) {
	wrap := func(err error) error { return &url.Error{Op: "Post", URL: "http://x.example/", Err: err} }
	const (
		Refused = transport.Refused
		DNS     = transport.DNS
		Timeout = transport.Timeout
		Other   = transport.Other
	)
	for _, tc := range []struct {
		name string
		err  error
		want transport.Class
	}{
		{"refusal", &sockets.DeniedError{Network: "tcp", Host: "x.example", Addr: netip.MustParseAddrPort("10.0.0.1:80"), Rule: sockets.RulePrivate}, Refused},
		{"refusal before lookup", &sockets.DeniedError{Network: "tcp", Host: "x.example", Rule: sockets.RuleSMTP}, Refused},
		{"name not found", &sockets.LookupError{Host: "x.example", Err: &net.DNSError{Err: "no such host", Name: "x.example", IsNotFound: true}}, DNS},
		{"lookup timed out", &sockets.LookupError{Host: "x.example", Err: &net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}}, Timeout},
		{"bare DNS error", &net.DNSError{Err: "server misbehaving", Name: "x.example"}, DNS},
		{"deadline", context.DeadlineExceeded, Timeout},
		{"net timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, Timeout},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, Other},
		{"canceled", context.Canceled, Other},
		{"other", errors.New("unexpected EOF"), Other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transport.Classify(wrap(tc.err)); got != tc.want {
				t.Errorf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestCallerMessage: the message for a refusal names the host as written
// and the rule, never the resolved or carried address nor the detail.
func TestCallerMessage(t *testing.T) {
	err := &url.Error{Op: "Post", URL: "http://hook.example/", Err: &sockets.DeniedError{
		Network: "tcp", Host: "hook.example", Addr: netip.MustParseAddrPort("[2002:a00:5::]:80"),
		Rule: sockets.RulePrivate, Form: sockets.Rule6to4, Embedded: netip.MustParseAddr("10.0.0.5"), Detail: "secret detail",
	}}
	msg := callerMessage(err)
	if !strings.Contains(msg, `"hook.example"`) || !strings.Contains(msg, sockets.RulePrivate.String()) {
		t.Errorf("message %q does not name the host and the rule", msg)
	}
	for _, leak := range []string{"2002:", "10.0.0.5", "secret"} {
		if strings.Contains(msg, leak) {
			t.Errorf("message %q shows %q", msg, leak)
		}
	}
}

// TestCLI: a URL the policy refuses (a loopback literal: no lookup, no
// connection) exits with 1 and the caller's message; extra arguments are a
// usage error.
func TestCLI(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := cli([]string{"http://127.0.0.1:9/hook"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	want := fmt.Sprintf("POST http://127.0.0.1:9/hook: destination not allowed: sockets: tcp to %q refused: %s\n", "127.0.0.1", sockets.RuleLoopback)
	if stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if !strings.Contains(stderr.String(), "rule=loopback") {
		t.Errorf("the log lacks the rule: %q", stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := cli([]string{"a", "b"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: webhook") {
		t.Errorf("two arguments: exit status %d, stderr %q; want 2 and the usage", code, stderr.String())
	}
}
