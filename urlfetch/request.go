package urlfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/outbound-go/outbound/sockets"
)

// allowedMethod reports whether the fetch service sends method.
func allowedMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	}
	return false
}

// portRule returns the rule that refuses a URL's port, or 0 when the fetch
// service connects to it (80-90, 440-450, 1024-65535). The ports the
// sockets policy refuses whatever the address (0, 25, and 21 over TCP) are
// refused for the policy's own rules, so that a URL is refused for the
// same rule on either backend of package transport. (A port written "0"
// never comes here: it is the scheme's default port, see defaultPort.)
func portRule(port uint64) sockets.Rule {
	switch {
	case port == 0:
		return sockets.RulePort0
	case port == 25:
		return sockets.RuleSMTP
	case port == 21:
		return sockets.RuleFTP
	case 80 <= port && port <= 90 || 440 <= port && port <= 450 || 1024 <= port && port <= 65535:
		return 0
	}
	return sockets.RulePort
}

// strippedHeaders are the headers an application cannot set; Host and
// Content-Length are then set from the request itself.
var strippedHeaders = func() map[string]bool {
	m := make(map[string]bool)
	for _, h := range []string{"Content-Length", "Host", "Vary", "Via", "X-Forwarded-For", "X-AppEngine-Inbound-AppId", "X-ProxyUser-IP"} {
		m[http.CanonicalHeaderKey(h)] = true
	}
	return m
}()

// redact returns u as a string without its user information.
func redact(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = nil
	return c.String()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// checkURL applies the URL rules; it returns the kind of error and its
// cause, or nils.
func checkURL(u *url.URL) (kind, cause error) {
	if u == nil {
		return ErrInvalidURL, errors.New("urlfetch: missing url")
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return ErrInvalidURL, errors.New("urlfetch: missing scheme (a relative url)")
	default:
		return ErrInvalidURL, &sockets.DeniedError{Network: "tcp", Host: u.Hostname(), Rule: sockets.RuleScheme, Detail: strconv.Quote(u.Scheme)}
	}
	if u.Opaque != "" {
		return ErrInvalidURL, errors.New("urlfetch: opaque url")
	}
	if maxURLLen(u) > MaxURLLength {
		if n := len(u.String()); n > MaxURLLength {
			return ErrInvalidURL, &limitError{What: "url", Limit: MaxURLLength, Size: int64(n)}
		}
	}
	if u.Hostname() == "" {
		return ErrInvalidURL, errors.New("urlfetch: missing host")
	}
	if !validHost(u.Host) {
		return ErrInvalidURL, fmt.Errorf("urlfetch: invalid host %q", u.Host)
	}
	// Port "0" is the scheme's default port (see defaultPort); "00" and
	// the like are refused as port 0.
	if p := port(u.Host); p != "" && p != "0" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return ErrInvalidURL, fmt.Errorf("urlfetch: port %q is not a number from 0 to 65535", p)
		}
		if r := portRule(n); r != 0 {
			de := &sockets.DeniedError{Network: "tcp", Host: u.Hostname(), Rule: r}
			if r == sockets.RulePort {
				de.Detail = strconv.Quote(p)
			}
			return ErrInvalidURL, de
		}
	}
	if u.User != nil {
		// google/appengine/api/urlfetch_errors.py, InvalidURLError: "The
		// login and password portion is not allowed." Refused, even when
		// empty ("http://@host/"), rather than sent as Authorization, as
		// http.Client would send it.
		return ErrInvalidURL, errors.New("urlfetch: the login and password portion of a url is not allowed")
	}
	return nil, nil
}

// maxURLLen returns a bound on len(u.String()) that costs no allocation:
// every part as long as it can be once escaped (three bytes for one),
// and the punctuation String may add. checkURL builds the string, to
// measure it, only for a URL this bound does not clear.
func maxURLLen(u *url.URL) int {
	pass, _ := u.User.Password()
	escaped := len(u.User.Username()) + len(pass) + len(u.Host) + max(len(u.Path), len(u.RawPath)) + max(len(u.Fragment), len(u.RawFragment))
	return len(u.Scheme) + len(u.Opaque) + 3*escaped + len(u.RawQuery) + len("://"+":@"+"/"+"./"+"?"+"#")
}

// port returns the port of a URL's host, "" when none is given. Unlike
// url.URL.Port, it returns a port that is not a number too, so that it is
// refused rather than taken for part of the host name.
func port(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.IndexByte(host[i:], ']') >= 0 {
		return ""
	}
	return host[i+1:]
}

// defaultPort returns u with its port dropped when it is "0", which App
// Engine took for the scheme's default port: allowed
// (google/appengine/api/urlfetch_stub.py, _IsAllowedPort: "port == 0"),
// then dropped from the host, the Host header included (_RetrieveURL: "if
// port == '0': host = host.replace(':0', "")"). Any other u is returned as
// it is; u is never changed.
func defaultPort(u *url.URL) *url.URL {
	if port(u.Host) != "0" {
		return u
	}
	c := *u
	c.Host = strings.TrimSuffix(u.Host, ":0")
	return &c
}

// header returns the header to send: the request's, canonicalized, without
// the headers the application cannot set, with App Engine's User-Agent.
func (b *backend) header(in http.Header) (http.Header, error) {
	h := make(http.Header, len(in)+1)
	for k, vs := range in {
		if !validToken(k) {
			return nil, fmt.Errorf("urlfetch: invalid header name %q", k)
		}
		ck := http.CanonicalHeaderKey(k)
		if strippedHeaders[ck] {
			continue
		}
		for _, v := range vs {
			if !validFieldValue(v) {
				return nil, fmt.Errorf("urlfetch: invalid value for header %q", k)
			}
		}
		h[ck] = append(h[ck], vs...) // a copy: the caller's slices are never shared
	}
	// Set explicitly, so that net/http adds no default of its own; with no
	// application value the suffix goes alone, as App Engine sent it.
	if v := h["User-Agent"]; len(v) > 0 && v[0] != "" {
		h["User-Agent"] = []string{v[0] + " " + b.ua}
	} else {
		// The suffix alone: one value shared by every request, read
		// only (net/http writes it, never changes it), and full, so that
		// an append copies it.
		h["User-Agent"] = b.uaValue[:1:1]
	}
	return h, nil
}

// bodyless reports whether the fetch service drops the payload of a
// request with method: App Engine sent a payload only with POST, PUT and
// PATCH (google/appengine/api/urlfetch.py, make_fetch_call).
func bodyless(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodDelete
}

// formContentType is the Content-Type of a POST with a payload and none of
// its own.
const formContentType = "application/x-www-form-urlencoded"

// prepare checks req against the rules and returns the request to send,
// with the exchange's deadline in its context, and the wrapper of its body
// when the body is streamed. On error it has closed req.Body and ended the
// exchange.
func (b *backend) prepare(ex *exchange, req *http.Request) (*http.Request, *reqBody, error) {
	if k, cause := checkURL(req.URL); k != nil {
		closeBody(req)
		return nil, nil, ex.fail(k, cause)
	}
	if !allowedMethod(ex.method) {
		closeBody(req)
		return nil, nil, ex.fail(ErrInvalidMethod, &sockets.DeniedError{Network: "tcp", Host: req.URL.Hostname(), Rule: sockets.RuleMethod, Detail: strconv.Quote(req.Method)})
	}
	h, err := b.header(req.Header)
	if err != nil {
		closeBody(req)
		return nil, nil, ex.fail(ErrInvalidRequest, err)
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	dropped := bodyless(ex.method)
	switch {
	case dropped:
		// GET, HEAD and DELETE: the payload is dropped unread, whatever
		// its size, and no Content-Length is sent.
		hasBody = false
	case req.ContentLength > MaxRequestBody:
		closeBody(req)
		return nil, nil, ex.fail(ErrPayloadTooLarge, &limitError{What: "request body", Limit: MaxRequestBody, Size: req.ContentLength})
	case req.ContentLength > 0 && !hasBody:
		closeBody(req)
		return nil, nil, ex.fail(ErrInvalidRequest, fmt.Errorf("urlfetch: ContentLength %d with no body", req.ContentLength))
	}

	ex.start(req.Context(), b.deadline)
	out := req.WithContext(ex.trace(req.Context())) // a shallow copy; req is never changed
	out.URL = defaultPort(req.URL)
	out.Method = ex.method
	out.Header = h
	out.Host = "" // the Host header comes from the URL
	// The length is known from here on (declared or buffered): nothing is
	// sent chunked, and no trailer can carry a header the rules strip.
	out.TransferEncoding, out.Trailer = nil, nil
	var rb *reqBody
	switch {
	case !hasBody:
		// Nil, not http.NoBody: the same request on the wire, without
		// the copy net/http makes of a NoBody.
		out.Body, out.ContentLength, out.GetBody = nil, 0, nil
		closeBody(req)
	case req.ContentLength > 0:
		rb = &reqBody{rc: req.Body, want: req.ContentLength}
		out.Body = rb
	default:
		// Unknown length: read at most the limit and one byte more before
		// sending anything, so that an oversize body is refused unsent.
		buf, err := ex.bufferBody(req.Body)
		if err != nil {
			return nil, nil, err
		}
		out.ContentLength = int64(len(buf))
		out.Body = http.NoBody
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		if len(buf) > 0 {
			out.Body, _ = out.GetBody()
		}
	}
	if ex.method == http.MethodPost && out.ContentLength > 0 {
		// google/appengine/api/urlfetch_stub.py, _RetrieveURL: a POST
		// with a payload and no Content-Type gets the form type.
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = []string{formContentType}
		}
	}
	return out, rb, nil
}

// bufferBody reads body, of unknown length, into memory: at most
// MaxRequestBody+1 bytes, and only while the deadline lasts. It closes
// body. On error it has ended the exchange.
func (ex *exchange) bufferBody(body io.ReadCloser) ([]byte, error) {
	type result struct {
		buf []byte
		err error
	}
	ctx, cancel := context.WithDeadline(ex.parent, ex.deadline)
	defer cancel()
	ch := make(chan result, 1) // the reader never blocks on sending
	go func() {
		buf, err := io.ReadAll(io.LimitReader(body, MaxRequestBody+1))
		ch <- result{buf, err}
	}()
	select {
	case r := <-ch:
		body.Close()
		switch {
		case r.err != nil:
			return nil, ex.fail(ErrInvalidRequest, fmt.Errorf("urlfetch: reading the request body: %w", r.err))
		case len(r.buf) > MaxRequestBody:
			return nil, ex.fail(ErrPayloadTooLarge, &limitError{What: "request body", Limit: MaxRequestBody, Size: -1})
		}
		return r.buf, nil
	case <-ctx.Done():
		// Closing the body ends the pending Read of most readers (pipes,
		// files, network bodies), and with it the goroutine.
		body.Close()
		return nil, ex.fail(ex.ctxKind(), fmt.Errorf("urlfetch: reading the request body: %w", ctx.Err()))
	}
}

// reqBody wraps a request body of known length, to tell a failure of the
// body from a failure of the network.
type reqBody struct {
	rc   io.ReadCloser
	want int64

	mu  sync.Mutex
	n   int64
	err error
}

func (b *reqBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.n += int64(n)
	if b.err == nil && err == nil && n > 0 && b.n >= b.want {
		// The declared length is reached: look for one byte more before
		// these last bytes are handed on, so that a body longer than its
		// ContentLength fails before the server has a complete request
		// (net/http finds out only after sending them, and the server's
		// reply can win that race).
		var extra [1]byte
		b.mu.Unlock()
		m, xerr := io.ReadFull(b.rc, extra[:])
		b.mu.Lock()
		b.n += int64(m)
		switch {
		case m > 0:
			n, err = 0, errBodyTooLong
		case xerr != io.EOF && xerr != io.ErrUnexpectedEOF:
			err = xerr
		default:
			err = io.EOF
		}
	}
	if b.err == nil {
		switch {
		case b.n > b.want:
			b.err = fmt.Errorf("urlfetch: request body is longer than its ContentLength %d", b.want)
		case err != nil && err != io.EOF:
			b.err = fmt.Errorf("urlfetch: reading the request body: %w", err)
		case err == io.EOF && b.n < b.want:
			b.err = fmt.Errorf("urlfetch: request body of %d bytes is shorter than its ContentLength %d", b.n, b.want)
		}
	}
	b.mu.Unlock()
	return n, err
}

func (b *reqBody) Close() error { return b.rc.Close() }

// errBodyTooLong is the read error of a request body found longer than its
// ContentLength.
var errBodyTooLong = errors.New("urlfetch: request body is longer than its ContentLength")

// failure returns the body's failure, or nil.
func (b *reqBody) failure() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
