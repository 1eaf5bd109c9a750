package sockets_test

// Hostile input for the parsers that take bytes from outside the process:
// socket descriptors handed back to Dialer.Attach, and Google range files
// given to ParseGoogleRanges.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/internal/lab"
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
// never panic, must fail with a *sockets.HandOffError that wraps one of
// its documented errors, and must attach nothing but the one genuine
// descriptor of the connection parked for the test, which is parked again
// after each attach.
func FuzzAttach(f *testing.F) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	f.Cleanup(srv.Close)
	conn := &lab.Connector{Target: srv.Listener.Addr().String()}
	reg := &sockets.Registry{Key: descKey}
	d := &sockets.Dialer{
		Resolver: lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}),
		Connect:  conn.Connect,
		Registry: reg,
		AppID:    "fuzz-app",
	}
	c, err := d.DialContext(context.Background(), "tcp", "www.example.com:80")
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := c.(*sockets.Conn).Detach()
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
			he, ok := errors.AsType[*sockets.HandOffError](err)
			if !ok || he.Op != "attach" {
				t.Fatalf("Attach(%q) = %v (%T), want a *sockets.HandOffError", desc, err, err)
			}
			if !errors.Is(err, sockets.ErrBadDescriptor) && !errors.Is(err, sockets.ErrWrongApp) && !errors.Is(err, sockets.ErrStaleDescriptor) {
				t.Fatalf("Attach(%q) = %v, which wraps none of the descriptor errors", desc, err)
			}
		}
		if n := reg.Len(); n != 1 {
			t.Fatalf("%d sockets parked, want the one", n)
		}
	})
}

// FuzzParseGoogleRanges gives ParseGoogleRanges arbitrary documents. It
// must never panic; when it accepts one, the ranges must be exactly the
// prefixes a plain reading of the document finds (encoding/json and
// netip.ParsePrefix, each masked), and contain each of their own
// addresses and no address outside them.
func FuzzParseGoogleRanges(f *testing.F) {
	for _, seed := range []string{
		`{"syncToken":"1","creationTime":"2026-01-02T03:04:05.000000","prefixes":[{"ipv4Prefix":"8.8.4.0/24"},{"ipv6Prefix":"2001:4860::/32"}]}`,
		`{"prefixes":[{"ipv4Prefix":"8.8.4.1/24"}]}`,         // not masked
		`{"prefixes":[{"ipv6Prefix":"8.8.4.0/24"}]}`,         // an IPv4 prefix as IPv6
		`{"prefixes":[{"ipv4Prefix":"::ffff:8.8.4.0/120"}]}`, // IPv4-mapped
		`{"prefixes":[{"ipv4Prefix":"8.8.4.0/33"}]}`,         // a length out of range
		`{"prefixes":[{"ipv4Prefix":"0.0.0.0/0"}]}`,          // everything
		`{"prefixes":[]}`, // none
		`{"creationTime":"yesterday","prefixes":[{"ipv4Prefix":"8.8.4.0/24"}]}`,
		`{"prefixes":[{"ipv4Prefix":"8.8.4.0/24","ipv6Prefix":"2001:4860::/32"}]}`, // both in one entry
		`{"prefixes":[{}]}`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		g, err := sockets.ParseGoogleRanges(bytes.NewReader(doc))
		if err != nil {
			return
		}
		var ref struct {
			Prefixes []struct {
				IPv4 string `json:"ipv4Prefix"`
				IPv6 string `json:"ipv6Prefix"`
			} `json:"prefixes"`
		}
		if err := json.Unmarshal(doc, &ref); err != nil {
			t.Fatalf("ParseGoogleRanges accepted %q, which encoding/json refuses: %v", doc, err)
		}
		var want []netip.Prefix
		for _, p := range ref.Prefixes {
			s, v6 := p.IPv4, false
			if s == "" {
				s, v6 = p.IPv6, true
			}
			pfx, err := netip.ParsePrefix(s)
			if err != nil || pfx.Addr().Is6() != v6 || pfx.Addr().Is4In6() {
				t.Fatalf("ParseGoogleRanges accepted %q, whose prefix %q is invalid", doc, s)
			}
			want = append(want, pfx.Masked())
		}
		got := g.Prefixes()
		if len(got) == 0 || len(got) != len(want) {
			t.Fatalf("prefixes %v, want %v", got, want)
		}
		for i, p := range got {
			if p != want[i] {
				t.Fatalf("prefix %d is %v, want %v", i, p, want[i])
			}
			if !g.Contains(p.Addr()) {
				t.Fatalf("ranges do not contain %v, the first address of %v", p.Addr(), p)
			}
		}
		// An address outside every prefix is not contained.
		for _, a := range []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2606:2800:220:1::1")} {
			inside := false
			for _, p := range want {
				inside = inside || p.Contains(a)
			}
			if g.Contains(a) != inside {
				t.Fatalf("Contains(%v) = %v, want %v", a, !inside, inside)
			}
		}
	})
}
