package socketapi_test

// Hostile input for the parsers that take bytes from outside the process:
// socket descriptors handed back to Dialer.Attach, and the addresses given
// to Dialer.DialContext, whose port may be a service name. (The bytes that
// travel beside a socket moved between processes are fuzzed by
// FuzzTransfer.)

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// descKey is the Registry key of FuzzAttach: fixed, so that the fuzzer's
// descriptor bodies can be given a valid MAC and reach the parser behind
// it.
var descKey = bytes.Repeat([]byte{0x5a}, 32)

// seal returns a descriptor for body: the body and its HMAC-SHA256 under
// descKey, in URL-safe base64 without padding, as Registry documents.
func seal(body []byte) string {
	m := hmac.New(sha256.New, descKey)
	m.Write(body)
	return base64.RawURLEncoding.EncodeToString(m.Sum(bytes.Clone(body)))
}

// FuzzAttach hands Dialer.Attach arbitrary descriptors: as given (input),
// and with the body sealed under the Registry's key (body), so that both
// the authentication and the parsing behind it are exercised. Attach must
// never panic, must fail with a *socketapi.Error that wraps one of
// its documented errors, and must attach nothing but the one genuine
// descriptor of the connection parked for the test, which is parked again
// after each attach.
func FuzzAttach(f *testing.F) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	f.Cleanup(srv.Close)
	conn := &lab.Connector{Target: srv.Listener.Addr().String()}
	reg := &socketapi.Registry{Key: descKey}
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{
			Resolver: lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}),
			Connect:  conn.Connect,
		},
		Registry: reg,
		AppID:    "fuzz-app",
	}
	c, err := d.DialContext(context.Background(), "tcp", "www.example.com:80")
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := c.(*socketapi.Conn).Detach()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		if c, err := d.Attach(genuine); err == nil {
			c.Close()
		}
	})
	raw, err := base64.RawURLEncoding.DecodeString(genuine)
	if err != nil || len(raw) < sha256.Size {
		f.Fatalf("descriptor %q is not base64 with a MAC", genuine)
	}
	body := raw[:len(raw)-sha256.Size]

	// Seeds: the genuine descriptor (genuine in the process that made the
	// corpus; stale or forged in any other), its body, and bodies cut,
	// grown, or with another version, length or application.
	f.Add(genuine, body)
	f.Add("", []byte{})
	f.Add("!!!not base64!!!", body[:1])
	f.Add(genuine[:len(genuine)-1], body[:len(body)-1])
	f.Add(strings.Repeat("A", 4096), append(bytes.Clone(body), 0))
	for _, mutate := range []func(b []byte){
		func(b []byte) { b[0] = 2 },                     // another version
		func(b []byte) { b[1+8+16] = 0x7f },             // an application length past the end
		func(b []byte) { b[1+8+16] = 0xff },             // an unterminated varint
		func(b []byte) { b[len(b)-1] ^= 1 },             // another application
		func(b []byte) { b[1+8] ^= 1 },                  // another nonce
		func(b []byte) { b[8] ^= 1 },                    // another socket number
		func(b []byte) { copy(b[1:], make([]byte, 8)) }, // socket number 0
	} {
		b := bytes.Clone(body)
		mutate(b)
		f.Add(seal(b), b)
	}

	f.Fuzz(func(t *testing.T, input string, body []byte) {
		for _, desc := range []string{input, seal(body)} {
			c, err := d.Attach(desc)
			if err == nil {
				if desc != genuine {
					c.Close()
					t.Fatalf("Attach accepted %q, which is not the genuine descriptor %q", desc, genuine)
				}
				if genuine, err = c.Detach(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			he, ok := errors.AsType[*socketapi.Error](err)
			if !ok || he.Op != "attach" {
				t.Fatalf("Attach(%q) = %v (%T), want a *socketapi.Error", desc, err, err)
			}
			if !errors.Is(err, socketapi.ErrBadDescriptor) && !errors.Is(err, socketapi.ErrWrongApp) && !errors.Is(err, socketapi.ErrStaleDescriptor) {
				t.Fatalf("Attach(%q) = %v, which wraps none of the descriptor errors", desc, err)
			}
		}
		if n := reg.Len(); n != 1 {
			t.Fatalf("%d sockets parked, want the one", n)
		}
	})
}

// FuzzServicePort dials arbitrary addresses with a socketapi.Dialer and,
// as the reference, with its embedded sockets.Dialer, after putting the
// decimal port in place of a service name of App Engine's table by hand
// (sdkServices, fidelity_test.go). The two must agree: both refuse, with
// the same message, or both connect to the same address. Every connection
// is a pipe made by the Connect seam; nothing leaves the process.
func FuzzServicePort(f *testing.F) {
	var mu sync.Mutex
	var attempts []netip.AddrPort
	connect := func(_ context.Context, _ string, ap netip.AddrPort) (net.Conn, error) {
		mu.Lock()
		attempts = append(attempts, ap)
		mu.Unlock()
		a, b := net.Pipe()
		b.Close()
		return a, nil
	}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{
		Resolver: lab.NewResolver(map[string][]string{"svc.example": {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"}}),
		Connect:  connect,
	}}
	for _, seed := range []string{
		"svc.example:http", "svc.example:pop3s", "[2606:2800:220:1:248:1893:25c8:1946]:www-http",
		"93.184.216.34:smtp", "svc.example:ftp", "svc.example:https", "svc.example:HTTP",
		"svc.example:80", "svc.example:", "svc.example", ":http", "svc.example:ht:tp",
		"[svc.example]:http", "svc.example:http\x00", "svc.example:3pop", "",
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	dialBoth := func(network, address string) (want, got []netip.AddrPort, wantErr, gotErr error) {
		ref := address
		if host, port, err := net.SplitHostPort(address); err == nil {
			if p, ok := sdkServices[port]; ok {
				ref = net.JoinHostPort(host, strconv.Itoa(int(p)))
			}
		}
		run := func(dial func() (net.Conn, error)) ([]netip.AddrPort, error) {
			mu.Lock()
			attempts = nil
			mu.Unlock()
			c, err := dial()
			if c != nil {
				c.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			return attempts, err
		}
		want, wantErr = run(func() (net.Conn, error) { return d.Dialer.DialContext(context.Background(), network, ref) })
		got, gotErr = run(func() (net.Conn, error) { return d.DialContext(context.Background(), network, address) })
		return
	}
	f.Fuzz(func(t *testing.T, address string, tcp bool) {
		network := "udp"
		if tcp {
			network = "tcp"
		}
		want, got, wantErr, gotErr := dialBoth(network, address)
		if (wantErr == nil) != (gotErr == nil) || !slices.Equal(want, got) {
			t.Fatalf("DialContext(%s, %q): %v, attempts %v; the core with the port translated: %v, attempts %v", network, address, gotErr, got, wantErr, want)
		}
		if gotErr != nil && (gotErr.Error() != wantErr.Error() || errors.Is(wantErr, sockets.ErrDenied) != errors.Is(gotErr, sockets.ErrDenied)) {
			t.Fatalf("DialContext(%s, %q): %v; the core: %v", network, address, gotErr, wantErr)
		}
	})
}
