package urlfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
)

// respond wraps the reply of net/http: the body is bounded by the response
// limit and ends the exchange when it ends, and the Status is written from
// the code. A reply App Engine took for malformed is closed and returned as
// an error.
func (b *backend) respond(ex *exchange, req *http.Request, resp *http.Response) (*http.Response, error) {
	if err := malformedStatus(resp); err != nil {
		// Closed unread: net/http then closes the connection rather than
		// keep one whose reply was not read to its end.
		resp.Body.Close()
		return nil, ex.fail(ErrMalformedReply, err)
	}
	resp.Request = req
	resp.Status = statusLine(resp.StatusCode)
	if resp.Body == nil || resp.Body == http.NoBody {
		resp.Body = http.NoBody
		ex.finish()
		return resp, nil
	}
	if b.strict && resp.ContentLength > MaxResponseBody {
		resp.Body.Close()
		return nil, ex.fail(ErrResponseTooLarge, &limitError{What: "response body", Limit: MaxResponseBody, Size: resp.ContentLength})
	}
	body := &ex.body // in the exchange: no allocation of its own
	*body = bodyReader{ex: ex, rc: resp.Body, remaining: MaxResponseBody, size: -1}
	if resp.ContentLength > MaxResponseBody {
		body.size = resp.ContentLength
	}
	if b.strict && resp.ContentLength < 0 {
		buf, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = bufferedBody{bytes.NewReader(buf)}
		resp.ContentLength = int64(len(buf))
		return resp, nil
	}
	resp.Body = body
	return resp, nil
}

// malformedStatus returns why App Engine took resp for a malformed reply,
// or nil: a status of 600 or more (google/appengine/api/urlfetch_stub.py,
// _RetrieveURL: "Status %s unknown"). A redirect without a Location header
// is a response: the service, which a Transport is, never follows, and
// took a missing Location for a malformed reply only when it followed
// ("if http_response.status in REDIRECT_STATUSES and follow_redirects").
func malformedStatus(resp *http.Response) error {
	if code := resp.StatusCode; code >= 600 {
		return fmt.Errorf("urlfetch: status %d is not an HTTP status (600 or more)", code)
	}
	return nil
}

// statusLine returns the Status of a response with code: the code and its
// reason phrase, as App Engine's Go runtime wrote it, whatever the server
// sent (google.golang.org/appengine/urlfetch, statusCodeToText):
// http.StatusText, or the code again for a code it has no text for ("599
// 599"; Python's httplib wrote "Unknown").
func statusLine(code int) string {
	if 0 <= code && code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	text := http.StatusText(code)
	if text == "" {
		text = strconv.Itoa(code)
	}
	return strconv.Itoa(code) + " " + text
}

// statusLines holds statusLine of every code http.StatusText knows, built
// once, so that a response's Status costs no allocation.
var statusLines = func() (lines [600]string) {
	for code := range lines {
		if text := http.StatusText(code); text != "" {
			lines[code] = strconv.Itoa(code) + " " + text
		}
	}
	return lines
}()

// bodyReader is a response body bounded by the response limit. Its errors are
// *Error values. Read must not be called concurrently, but Close may be
// called concurrently with Read.
type bodyReader struct {
	ex        *exchange
	rc        io.ReadCloser
	remaining int64 // bytes still allowed
	size      int64 // the announced length when over the limit, else -1
	err       error // the sticky end of the body; only Read touches it
	closed    atomic.Bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.closed.Load() {
		return 0, b.ex.err(ErrConnectionClosed, errors.New("urlfetch: read on closed response body"))
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Read one byte past the limit at most, to know whether the body goes
	// on.
	if int64(len(p)) > b.remaining+1 {
		p = p[:b.remaining+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.remaining {
		n = int(b.remaining)
		b.remaining = 0
		b.err = b.ex.err(ErrResponseTooLarge, &limitError{What: "response body", Limit: MaxResponseBody, Size: b.size})
		b.end()
		return n, b.err
	}
	b.remaining -= int64(n)
	switch {
	case err == io.EOF:
		b.err = io.EOF
		b.ex.finish()
	case err != nil:
		b.err = b.ex.classify(err, nil, b.closed.Load())
		b.end()
	}
	return n, b.err
}

// end closes the underlying body and ends the exchange.
func (b *bodyReader) end() {
	if b.closed.CompareAndSwap(false, true) {
		b.rc.Close()
	}
	b.ex.finish()
}

// Close closes the body and ends the exchange. The connection is kept for
// reuse only when the body was read to its end.
func (b *bodyReader) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := b.rc.Close()
	b.ex.finish()
	return err
}

// bufferedBody is a response body read in full before RoundTrip returned.
type bufferedBody struct{ *bytes.Reader }

func (bufferedBody) Close() error { return nil }

// failRT ends the exchange after net/http's RoundTrip failed.
func (ex *exchange) failRT(err error, rb *reqBody) *Error {
	e := ex.classify(err, rb, false)
	ex.finish()
	return e
}

// ctxKind returns the kind of error for an exchange that ran out of time
// or whose request context ended.
func (ex *exchange) ctxKind() error {
	if errors.Is(ex.parent.Err(), context.Canceled) {
		return ErrCanceled
	}
	return ErrDeadlineExceeded
}

// pastDeadline reports whether the exchange's deadline has passed: its
// dial, cut at the same deadline, can fail before the exchange's timer
// has fired (timers on different Ps need not fire in order), and a lookup
// cut then must still be reported as the deadline it is.
func (ex *exchange) pastDeadline() bool {
	return !ex.deadline.IsZero() && !time.Now().Before(ex.deadline)
}

// classify turns an error of net/http into an *Error. Most errors of
// net/http have no type; they are told apart by what is known of the
// exchange: its context, the dial, the request body, the connection.
func (ex *exchange) classify(err error, rb *reqBody, closed bool) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	if ex.parent != nil && !closed && (ex.parent.Err() != nil || ex.pastDeadline()) {
		k := ex.ctxKind()
		if k == ErrDeadlineExceeded {
			if ex.expired.Load() && !timedOut(err) {
				// net/http's error for a request expire canceled, or
				// for the connection it closed: what net/http returns
				// for a deadline context.
				err = context.DeadlineExceeded
			}
			// A lookup cut by the deadline is a lookup that timed out:
			// ErrDNS, and a timeout (Error.Timeout, Error.Is).
			if le, ok := errors.AsType[*sockets.LookupError](err); ok && timedOut(le) {
				return ex.err(ErrDNS, err)
			}
			if ex.lookups.Load() > 0 && timedOut(err) {
				return ex.err(ErrDNS, &sockets.LookupError{Host: ex.host, Err: err})
			}
		}
		return ex.err(k, err)
	}
	if closed {
		return ex.err(ErrConnectionClosed, err)
	}
	fromDial := false
	if de, ok := errors.AsType[*dialError](err); ok {
		err, fromDial = de.err, true
	}
	if _, ok := errors.AsType[*sockets.DeniedError](err); ok {
		return ex.err(sockets.ErrDenied, err)
	}
	if _, ok := errors.AsType[*sockets.LookupError](err); ok {
		return ex.err(ErrDNS, err)
	}
	if cerr := tlsconf.AsCertificateError(ex.host, err); errors.Is(cerr, tlsconf.ErrCertificate) {
		return ex.err(tlsconf.ErrCertificate, cerr)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return ex.err(ErrDeadlineExceeded, err)
	}
	if fromDial {
		return ex.err(ErrConnectionClosed, err)
	}
	if berr := rb.failure(); berr != nil {
		return ex.err(ErrInvalidRequest, berr)
	}
	if c := ex.conn.Load(); c != nil && c.broken.Load() || closedConn(err) {
		return ex.err(ErrConnectionClosed, err)
	}
	return ex.err(ErrMalformedReply, fmt.Errorf("urlfetch: %w", err))
}

// closedConn reports whether err says that the peer or the network closed
// or reset a connection, or that it could not be made. (net.ErrClosed is not
// among them: it follows a close on this side, by net/http, for a reason of
// its own.)
func closedConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)
}

// ReadAll reads resp.Body to its end, closes it, and returns what it read.
// Unlike io.ReadAll, it reads into one buffer sized from resp.ContentLength
// (at most [MaxResponseBody] plus one byte) when the length is announced,
// so that a large body is allocated once, not grown by copying. A body of
// unknown length is read as io.ReadAll reads it.
//
// On error ReadAll returns what it read before the error, for example the
// first MaxResponseBody bytes and an error matching [ErrResponseTooLarge].
// It works with any response; only bodies from a [Transport] are bounded.
func ReadAll(resp *http.Response) ([]byte, error) {
	if resp == nil || resp.Body == nil {
		return nil, nil
	}
	defer resp.Body.Close()
	if resp.Body == http.NoBody {
		return []byte{}, nil // a HEAD reply announces a length it does not carry
	}
	size := resp.ContentLength
	if size < 0 {
		return io.ReadAll(resp.Body)
	}
	size = min(size, MaxResponseBody)
	// One byte more than announced, so that the Read that reports the end
	// has room and the buffer is not grown for it.
	buf := make([]byte, 0, size+1)
	for {
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		case len(buf) == cap(buf):
			// Longer than announced (not a body of net/http, which keeps
			// to Content-Length): read the rest as io.ReadAll does.
			rest, err := io.ReadAll(resp.Body)
			return append(buf, rest...), err
		}
	}
}
