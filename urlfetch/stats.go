package urlfetch

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts the bytes that one exchange (one RoundTrip, with its
// response body) moved over the network, as App Engine bills them.
//
// The bytes are counted on the wire: what the connection wrote to and read
// from the TCP socket while the exchange owned it, so the request line,
// headers and body (chunked framing included) go out, and the status line,
// headers and body come in as they travel (compressed, if the reply was).
// On https the TLS records are counted, and a new connection's handshake
// counts for the first exchange that uses it (or for the one that dialed
// it, when the handshake fails). A connection reused from the idle pool
// costs nothing extra. Bytes that move after the exchange has ended (its
// body closed or read to the end) are not counted.
type Stats struct {
	BytesSent     int64 // bytes written to the network
	BytesReceived int64 // bytes read from the network
}

// exchange is the state of one RoundTrip, from the moment the request is
// accepted until its response body is finished.
type exchange struct {
	req     *http.Request // the caller's request, as given to RoundTrip
	method  string
	url     *url.URL // the request's; redacted only when an error names it
	host    string   // the URL's host name, for certificate errors
	onStats func(*http.Request, Stats)

	// Set by start and arm, before net/http sees the exchange.
	parent   context.Context // the request's context; nil until started
	deadline time.Time       // when the exchange ends (see start)
	rt       *http.Transport // the backend's, which sends out
	out      *http.Request   // the request sent for req

	timer   atomic.Pointer[time.Timer] // expire, at the deadline
	expired atomic.Bool                // expire has run

	sent, recv atomic.Int64
	conn       atomic.Pointer[meteredConn] // the connection the request got
	lookups    atomic.Int32                // host name lookups in progress for its dials
	done       atomic.Bool

	// The response body, when there is one (see respond), kept here so
	// that it costs no allocation of its own.
	body bodyReader

	// Set by trace: the request's context and its trace, kept here so
	// that they cost no allocation of their own.
	reqCtx exchangeCtx
	ct     httptrace.ClientTrace
}

// exchangeKey is the context key under which a dial finds the exchange
// that started it (net/http keeps the request context's values for dials).
type exchangeKey struct{}

// exchangeCtx is a context that carries its exchange under exchangeKey:
// context.WithValue's work, without allocating a context of its own.
type exchangeCtx struct {
	context.Context
	ex *exchange
}

func (c *exchangeCtx) Value(key any) any {
	if key == (exchangeKey{}) {
		return c.ex
	}
	return c.Context.Value(key)
}

// trace returns ctx carrying the exchange, for its dials, and the hook
// that hands the exchange its connection. It is called once per exchange.
func (ex *exchange) trace(ctx context.Context) context.Context {
	ex.reqCtx = exchangeCtx{Context: ctx, ex: ex}
	ex.ct = httptrace.ClientTrace{GotConn: ex.gotConn}
	return httptrace.WithClientTrace(&ex.reqCtx, &ex.ct)
}

// gotConn makes ex the owner of the connection net/http chose for it, so
// that the connection's traffic counts for ex from now on.
func (ex *exchange) gotConn(info httptrace.GotConnInfo) {
	if mc := metered(info.Conn); mc != nil {
		mc.setOwner(ex)
		ex.conn.Store(mc)
		if ex.expired.Load() {
			// The deadline passed while the connection was on its way.
			mc.closeFor(ex)
		}
	}
}

// metered returns the counting connection under c, or nil.
func metered(c net.Conn) *meteredConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	mc, _ := c.(*meteredConn)
	return mc
}

// start gives the exchange its deadline: d from now, or the deadline of
// parent, the request's context, if that is sooner. Until arm, the
// exchange is bounded by contexts of its own (bufferBody).
func (ex *exchange) start(parent context.Context, d time.Duration) {
	ex.parent = parent
	ex.deadline = time.Now().Add(d)
	if pd, ok := parent.Deadline(); ok && pd.Before(ex.deadline) {
		ex.deadline = pd
	}
}

// arm starts the deadline's timer for out, the request rt is about to
// send. When the deadline passes, the exchange ends even if nobody reads
// or closes the response body: expire cancels out, as the end of a
// deadline context would, and finishes the exchange.
//
// The deadline is a timer, not a context: net/http derives a context of
// its own from the request's for every request, and a deadline in the
// request's would cost each request its context, a channel and net/http's
// registration in it, seven allocations, where the timer costs two.
func (ex *exchange) arm(rt *http.Transport, out *http.Request) {
	ex.rt, ex.out = rt, out
	ex.timer.Store(time.AfterFunc(time.Until(ex.deadline), ex.expire))
}

// expire ends the exchange at its deadline. It cancels the request in
// net/http, which then ends it as it ends one whose context is done:
// wherever the request is (waiting for its dial, whose lookup may not
// return, for the reply, or for the caller to read the body), RoundTrip
// or the body's Read fails, and the connection is closed. It also closes
// the connection the exchange holds, if it still holds it (gotConn closes
// one it gets later), so that the deadline holds even without net/http's
// cancellation. Then it finishes the exchange.
func (ex *exchange) expire() {
	ex.expired.Store(true)
	if ex.done.Load() {
		return
	}
	// Transport.CancelRequest is deprecated in favour of the request
	// context, whose deadline costs what arm saves; for HTTP/1, which is
	// all a backend speaks, it cancels the context net/http made for the
	// request (net/http's transport.go, prepareTransportCancel).
	ex.rt.CancelRequest(ex.out) //lint:ignore SA1019 see above
	if c := ex.conn.Load(); c != nil {
		c.closeFor(ex)
	}
	ex.finish()
}

// finish ends the exchange once: it stops the deadline's timer and reports
// the counts.
func (ex *exchange) finish() {
	if !ex.done.CompareAndSwap(false, true) {
		return
	}
	if t := ex.timer.Load(); t != nil {
		t.Stop() // nil when the timer fired before arm stored it
	}
	if ex.onStats != nil {
		ex.onStats(ex.req, Stats{BytesSent: ex.sent.Load(), BytesReceived: ex.recv.Load()})
	}
}

// fail ends the exchange with an error of the given kind.
func (ex *exchange) fail(k, cause error) *Error {
	ex.finish()
	return ex.err(k, cause)
}

// err returns an *Error of the given kind for this exchange.
func (ex *exchange) err(k, cause error) *Error {
	var u string
	if ex.url != nil {
		u = redact(ex.url)
	}
	return &Error{Kind: k, Method: ex.method, URL: u, Err: cause}
}

// meteredConn counts the bytes a connection moves, for the exchange that
// owns it at the time, and notes whether it broke. It is the one wrapper
// around a connection of the backend. It is safe for concurrent use, as
// net.Conn is, and its data path takes no lock.
type meteredConn struct {
	net.Conn
	broken atomic.Bool // a Read or Write failed because of the peer or the network

	// owner changes, and closeFor's close, under mu: the data path
	// only loads owner.
	mu    sync.Mutex
	owner atomic.Pointer[exchange]

	// The bytes moved while no exchange owned the connection (dialing,
	// the TLS handshake), for its first owner.
	sent, recv atomic.Int64
}

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.count(0, n, err)
	return n, err
}

func (c *meteredConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.count(n, 0, err)
	return n, err
}

func (c *meteredConn) count(sent, recv int, err error) {
	// An error after net/http closed the connection itself (for a reply it
	// could not parse, say) or after a deadline says nothing of the peer.
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.broken.Store(true)
	}
	if sent == 0 && recv == 0 {
		return
	}
	if o := c.owner.Load(); o != nil {
		o.sent.Add(int64(sent))
		o.recv.Add(int64(recv))
		return
	}
	c.sent.Add(int64(sent))
	c.recv.Add(int64(recv))
	// An owner that came meanwhile may have taken the earlier bytes
	// already: hand it these too.
	if o := c.owner.Load(); o != nil {
		c.handOver(o)
	}
}

// setOwner makes ex the owner of c. The first owner also gets the bytes
// moved before, while the connection was made.
func (c *meteredConn) setOwner(ex *exchange) {
	c.mu.Lock()
	prev := c.owner.Swap(ex)
	c.mu.Unlock()
	if prev == nil {
		c.handOver(ex)
	}
}

// closeFor closes c if ex still owns it: at ex's deadline, a connection
// that net/http has since handed to another exchange is left alone.
func (c *meteredConn) closeFor(ex *exchange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owner.Load() == ex {
		c.Close()
	}
}

// handOver moves the bytes counted without an owner to ex.
func (c *meteredConn) handOver(ex *exchange) {
	ex.sent.Add(c.sent.Swap(0))
	ex.recv.Add(c.recv.Swap(0))
}
