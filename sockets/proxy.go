package sockets

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/outbound-go/outbound/internal/dialhook"
	"github.com/outbound-go/outbound/tlsconf"
)

// This file is the egress proxy of a [Dialer] ([Dialer.Proxy]). With a
// proxy, the policy sees what it sees without one: the destination is
// resolved and every address checked here, exactly as for a direct dial,
// and only then is the proxy asked, with HTTP CONNECT (RFC 9110, section
// 9.3.6), to tunnel to the exact address that passed, written as an IP
// literal. The proxy never sees the name, so it cannot resolve it to
// another address; the name stays with the caller, for TLS (SNI and the
// certificate check) and for the Host header. A refusal is made before a
// byte is sent to the proxy.

// RuleProxyNetwork (errors.go) refuses a dial over UDP through a Dialer
// that has a Proxy.

// ErrProxy is matched by every *[ProxyError]: errors.Is(err, ErrProxy)
// reports whether the proxy of a [Dialer], not the destination or the
// policy, made a dial fail. No ProxyError matches [ErrDenied].
var ErrProxy = errors.New("sockets: proxy failure")

// ProxyFailure says how a proxy failed a dial. Its values are a closed set.
type ProxyFailure uint8

// The ways a proxy fails a dial.
const (
	// ProxyInvalid: the proxy URL cannot be used (a scheme other than
	// http and https, no host, a bad port, a path, query or fragment).
	// Nothing was sent.
	ProxyInvalid ProxyFailure = iota + 1

	// ProxyUnreachable: no connection to the proxy could be made: its
	// name did not resolve, every connect to it failed, or the TLS
	// handshake with an https:// proxy failed (a refused certificate is
	// then a *tlsconf.CertificateError naming the proxy, in Err).
	ProxyUnreachable

	// ProxyAuthRequired: the proxy answered 407 with a Proxy-Authenticate
	// challenge: it wants credentials, or refused the ones in the URL.
	ProxyAuthRequired

	// ProxyRefused: the proxy answered the CONNECT with a status other
	// than 2xx (StatusCode says which), its own policy refusing the
	// destination (403, or 407 without a challenge, as smokescreen
	// answers), or its failure to reach it (502, 503, 504).
	ProxyRefused

	// ProxyBroken: the proxy broke the exchange that opens the tunnel: it
	// closed the connection, or its reply to the CONNECT was not HTTP/1.x
	// or too long.
	ProxyBroken
)

// String returns the failure in words, such as "refused by proxy".
func (f ProxyFailure) String() string {
	switch f {
	case ProxyInvalid:
		return "invalid proxy url"
	case ProxyUnreachable:
		return "proxy unreachable"
	case ProxyAuthRequired:
		return "proxy needs credentials"
	case ProxyRefused:
		return "refused by proxy"
	case ProxyBroken:
		return "proxy broke the tunnel"
	}
	return "ProxyFailure(" + strconv.Itoa(int(f)) + ")"
}

// ProxyError reports a dial that the proxy of a [Dialer] failed: which
// proxy, for which checked destination, how (Kind) and, when the proxy
// answered, with what status. It matches [ErrProxy] through errors.Is, and
// errors.Is and errors.As reach Err. It never matches [ErrDenied]: the
// policy allowed the destination (or was not asked yet, for
// ProxyInvalid).
//
// Kind and StatusCode say whether the same dial may succeed later: a
// proxy that refused a destination or wants credentials will do so again,
// and a retry must not treat it as a passing fault of the destination
// (package transport's retry decision reads them). A proxy that could not
// be reached in time holds the timeout in Err: errors.Is(err,
// context.DeadlineExceeded) and errors.As with a [net.Error] find it.
type ProxyError struct {
	Kind ProxyFailure

	// Proxy is the proxy URL without its credentials, such as
	// "http://proxy.internal:3128"; empty when the URL could not be read.
	Proxy string

	// Addr is the destination the tunnel was for, as checked by the
	// policy; zero for ProxyInvalid.
	Addr netip.AddrPort

	// StatusCode and Status are the proxy's reply to the CONNECT, such as
	// 403 and "403 Forbidden", for ProxyAuthRequired and ProxyRefused;
	// zero otherwise.
	StatusCode int
	Status     string

	// Err is the cause, when there is one beyond the reply: the dial or
	// TLS error, the read or write error, the malformed reply.
	Err error
}

// Error returns a message such as
//
//	sockets: proxy http://127.0.0.1:3128: refused by proxy: tunnel to 93.184.216.34:443: 403 Forbidden
func (e *ProxyError) Error() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString("sockets: proxy")
	if e.Proxy != "" {
		b.WriteString(" ")
		b.WriteString(e.Proxy)
	}
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Addr.IsValid() {
		b.WriteString(": tunnel to ")
		b.WriteString(e.Addr.String())
	}
	if e.Status != "" {
		b.WriteString(": ")
		b.WriteString(e.Status)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *ProxyError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether target is [ErrProxy].
func (e *ProxyError) Is(target error) bool { return e != nil && target == ErrProxy }

// ErrorType returns the kind as a short code, such as "proxy_refused", for
// OpenTelemetry's error.type.
func (e *ProxyError) ErrorType() string {
	if e == nil {
		return "proxy_error"
	}
	switch e.Kind {
	case ProxyInvalid:
		return "proxy_invalid"
	case ProxyUnreachable:
		return "proxy_unreachable"
	case ProxyAuthRequired:
		return "proxy_auth_required"
	case ProxyRefused:
		return "proxy_refused"
	case ProxyBroken:
		return "proxy_broken"
	}
	return "proxy_error"
}

// ParseProxy parses raw as a proxy URL for [Dialer.Proxy] and checks it
// with [CheckProxy]. A failure is a *[ProxyError] of kind ProxyInvalid
// whose message never repeats the credentials raw may hold.
func ParseProxy(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, credentials included.
		return nil, &ProxyError{Kind: ProxyInvalid, Err: errors.New("not a URL")}
	}
	if err := CheckProxy(u); err != nil {
		return nil, err
	}
	return u, nil
}

// CheckProxy reports whether u can serve as [Dialer.Proxy]: nil (no proxy)
// or an absolute URL with the scheme http or https, a host (a name, or an
// IP literal, IPv6 in brackets), an optional decimal port from 1 to 65535
// (80 for http and 443 for https when absent), optional credentials
// ("user:password@"), and nothing else: no path but "/", no query, no
// fragment. A failure is a *[ProxyError] of kind ProxyInvalid.
func CheckProxy(u *url.URL) error {
	if u == nil {
		return nil
	}
	_, err := parseProxy(u)
	return err
}

// proxyConfig is a checked proxy URL, ready to dial.
type proxyConfig struct {
	redacted string // scheme://host[:port], no credentials
	tls      bool   // https://
	host     string // the name or literal, without brackets
	port     uint16
	auth     string // the Proxy-Authorization value; "" for none
}

// parseProxy checks u (not nil) and returns what a dial needs.
func parseProxy(u *url.URL) (*proxyConfig, error) {
	p := &proxyConfig{}
	invalid := func(why string) error {
		return &ProxyError{Kind: ProxyInvalid, Proxy: p.redacted, Err: errors.New(why)}
	}
	switch u.Scheme {
	case "http", "https":
		p.redacted = u.Scheme + "://" + u.Host
	case "":
		return nil, invalid("no scheme: want http:// or https://")
	default:
		if u.Opaque != "" {
			// "user:password@host:port" parses as scheme "user": say
			// nothing of it.
			return nil, invalid("not an http:// or https:// URL")
		}
		return nil, invalid("scheme " + strconv.Quote(u.Scheme) + " is not http or https")
	}
	if u.Opaque != "" {
		return nil, invalid("not an absolute URL with a host")
	}
	p.tls = u.Scheme == "https"
	if u.Host == "" || u.Hostname() == "" {
		return nil, invalid("no host")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, invalid("a proxy URL has no path, query or fragment")
	}
	p.host = u.Hostname()
	if _, ok := parseLiteral(p.host); !ok {
		if err := validHostName(p.host); err != nil {
			return nil, invalid(err.Error())
		}
	}
	switch ps := u.Port(); {
	case ps == "" && p.tls:
		p.port = 443
	case ps == "":
		p.port = 80
	default:
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || n == 0 {
			return nil, invalid("port " + strconv.Quote(ps) + " is not a number from 1 to 65535")
		}
		p.port = uint16(n)
	}
	if u.User != nil {
		// RFC 7617: Basic credentials, as net/http sends them to a proxy.
		pass, _ := u.User.Password()
		p.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))
	}
	return p, nil
}

// checkProxyDial refuses, before any lookup, what a dial through d's proxy
// cannot do: a network other than TCP, an unusable proxy URL. It returns
// nil when d has no proxy.
func (d *Dialer) checkProxyDial(network, address string) error {
	if d.Proxy == nil {
		return nil
	}
	if dialhook.Protocol(network) != "tcp" {
		return &DeniedError{Network: network, Host: address, Rule: RuleProxyNetwork}
	}
	return CheckProxy(d.Proxy)
}

// maxProxyReply bounds the proxy's reply to a CONNECT, status line and
// header fields, as net/http's MaxResponseHeaderBytes bounds a reply.
const maxProxyReply = 64 << 10

// connectProxy is the final connect step of a dial through d.Proxy: it
// connects to the proxy and asks it to tunnel to ap, which passed the
// policy. It returns the connection once the tunnel is open, or a
// *ProxyError; a dial that ctx ends while the proxy is connecting to ap
// fails as a direct connect to ap would, with ctx's error (a timeout, for
// a deadline).
func (d *Dialer) connectProxy(ctx context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
	if dialhook.Protocol(network) != "tcp" {
		return nil, &DeniedError{Network: network, Addr: ap, Rule: RuleProxyNetwork}
	}
	p, err := parseProxy(d.Proxy)
	if err != nil {
		return nil, err
	}
	target := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	fail := func(kind ProxyFailure, err error) *ProxyError {
		return &ProxyError{Kind: kind, Proxy: p.redacted, Addr: target, Err: err}
	}
	c, err := d.dialProxy(ctx, p)
	if err != nil {
		return nil, fail(ProxyUnreachable, err)
	}
	tc, err := connectTunnel(ctx, c, p, target)
	if err == nil {
		return tc, nil
	}
	c.Close()
	if pe, ok := err.(*ProxyError); ok {
		// The proxy answered: its answer stands, whatever ctx does now.
		pe.Proxy, pe.Addr = p.redacted, target
		return nil, pe
	}
	if cerr := ctxErr(ctx); cerr != nil {
		// The proxy was still connecting to target: the connect to
		// target ran out of time, or was called off, as it could
		// directly.
		return nil, dialError(network, target, cerr)
	}
	return nil, fail(ProxyBroken, err)
}

// ctxErr returns ctx's error, or context.DeadlineExceeded once its
// deadline has passed though its timer has not fired yet, or nil.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// dialProxy connects to the proxy: its name resolved through d's
// resolver (the proxy is not checked against the policy: it is reachable
// because it is named), its addresses tried in turn, then TLS for an
// https:// proxy.
func (d *Dialer) dialProxy(ctx context.Context, p *proxyConfig) (net.Conn, error) {
	var addrs []netip.Addr
	if a, ok := parseLiteral(p.host); ok {
		addrs = []netip.Addr{a}
	} else {
		var err error
		if addrs, err = d.resolveName(ctx, "ip", p.host); err != nil {
			return nil, err
		}
	}
	nd := net.Dialer{KeepAlive: d.KeepAlive}
	var c net.Conn
	var first error
	for _, a := range addrs {
		var err error
		c, err = nd.DialContext(ctx, "tcp", netip.AddrPortFrom(a.Unmap(), p.port).String())
		if err == nil {
			break
		}
		if first == nil {
			first = err
		}
	}
	if c == nil {
		return nil, first
	}
	if !p.tls {
		return c, nil
	}
	base := d.ProxyTLS
	if base == nil {
		base = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tc, err := tlsconf.Handshake(ctx, c, base, p.host) // closes c on failure
	if err != nil {
		return nil, err
	}
	return tc, nil
}

// aLongTimeAgo is a deadline in the past, which makes a blocked Read or
// Write return at once.
var aLongTimeAgo = time.Unix(1, 0)

// connectTunnel sends the CONNECT for target over c and reads the reply,
// within ctx. On success it returns the tunnel, c itself unless the proxy
// sent bytes of the tunnel along with its reply.
func connectTunnel(ctx context.Context, c net.Conn, p *proxyConfig, target netip.AddrPort) (net.Conn, error) {
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	tc, err := exchangeConnect(c, p, target)
	if !stop() && err == nil {
		// ctx ended as the exchange did: the dial fails all the same.
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return tc, nil
}

// exchangeConnect writes the CONNECT request and reads the reply.
func exchangeConnect(c net.Conn, p *proxyConfig, target netip.AddrPort) (net.Conn, error) {
	hostport := target.String() // "[2001:db8::1]:443" for IPv6 (RFC 9110, section 7.2)
	req := make([]byte, 0, 96+len(p.auth))
	req = append(req, "CONNECT "...)
	req = append(req, hostport...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, hostport...)
	req = append(req, "\r\n"...)
	if p.auth != "" {
		req = append(req, "Proxy-Authorization: "...)
		req = append(req, p.auth...)
		req = append(req, "\r\n"...)
	}
	req = append(req, "\r\n"...)
	if _, err := c.Write(req); err != nil {
		return nil, err
	}

	lr := &io.LimitedReader{R: c, N: maxProxyReply}
	br := bufio.NewReaderSize(lr, 4096)
	tp := textproto.NewReader(br)
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, replyError(err, lr)
		}
		code, status, err := parseStatusLine(line)
		if err != nil {
			return nil, err
		}
		hdr, err := tp.ReadMIMEHeader()
		if err != nil {
			return nil, replyError(err, lr)
		}
		switch {
		case code >= 100 && code < 200:
			continue // an interim reply; the final one follows (RFC 9110, section 15.2)
		case code >= 200 && code < 300:
			// The tunnel is open (RFC 9110, section 9.3.6); whatever
			// follows the header is the destination's.
			if n := br.Buffered(); n > 0 {
				early, _ := br.Peek(n)
				return &tunnelConn{Conn: c, early: append([]byte(nil), early...)}, nil
			}
			return c, nil
		case code == 407 && len(hdr["Proxy-Authenticate"]) > 0:
			// RFC 9110, section 15.5.8: a 407 carries a challenge. One
			// without it is a refusal, as smokescreen's denials are.
			return nil, &ProxyError{Kind: ProxyAuthRequired, StatusCode: code, Status: status}
		default:
			return nil, &ProxyError{Kind: ProxyRefused, StatusCode: code, Status: status}
		}
	}
}

// replyError describes a failure to read the proxy's reply.
func replyError(err error, lr *io.LimitedReader) error {
	switch {
	case lr.N <= 0:
		return errors.New("reply to CONNECT longer than " + strconv.Itoa(maxProxyReply) + " bytes")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("connection closed before a complete reply to CONNECT: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// parseStatusLine parses "HTTP/1.x NNN reason" and returns the code and
// "NNN reason", made printable.
func parseStatusLine(line string) (int, string, error) {
	proto, rest, _ := strings.Cut(line, " ")
	codeText, reason, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeText)
	if proto != "HTTP/1.1" && proto != "HTTP/1.0" || len(codeText) != 3 || err != nil || code < 100 {
		if len(line) > 64 {
			line = line[:64] + "..."
		}
		return 0, "", errors.New("malformed reply to CONNECT: " + strconv.Quote(line))
	}
	reason = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, reason)
	if len(reason) > 128 {
		reason = reason[:128]
	}
	return code, strings.TrimSpace(codeText + " " + reason), nil
}

// tunnelConn is a tunnel whose first bytes arrived with the proxy's reply
// (a server that speaks first, such as SMTP's greeting): Read returns them
// before reading the connection again. Its other methods are the
// connection's.
type tunnelConn struct {
	net.Conn
	early []byte // not yet read
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite shuts down the writing side, if the connection can.
func (c *tunnelConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// CloseRead shuts down the reading side, if the connection can.
func (c *tunnelConn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return errors.ErrUnsupported
}

// SyscallConn returns the socket's raw connection, if it has one.
func (c *tunnelConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}
