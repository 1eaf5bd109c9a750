package urlfetch_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/urlfetch"
)

// checkDeadlineError checks everything a deadline error must be.
func checkDeadlineError(t testing.TB, err error) {
	t.Helper()
	mustKind(t, err, urlfetch.ErrDeadlineExceeded)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not match context.DeadlineExceeded", err)
	}
	if ne, ok := errors.AsType[timeoutError](err); !ok || !ne.Timeout() {
		t.Errorf("error %v is not a net.Error with Timeout", err)
	}
	if !final(err) {
		t.Errorf("a deadline error is not final: the caller's time is spent")
	}
}

// stallServer sends nothing until the client goes away; with headers, it
// first sends the headers and some of the body.
func stallServer(t *testing.T, headers bool) *server {
	return newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headers {
			w.Header().Set("Content-Length", "1000")
			w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}), false)
}

// TestDeadline checks, on real loopback connections, that the deadline
// ends the exchange with a slow server, before the reply and while the
// body is read: with the deadline's error, never before the deadline, and
// short of the 5 s default, so that the deadline set is the one that
// ended it. How exactly it ends at the deadline (within 10% of it, as the
// specification asks; in fact to the nanosecond) is shown on synctest's
// clock by TestDeadlineValues and TestDeadlineWhileReading: on real
// sockets, a busy machine keeps the goroutine that sees the end waiting
// for a CPU (up to a second with the load average at 20 on 2 CPUs), which
// no bound of 10% absorbs.
func TestDeadline(t *testing.T) {
	const deadline = time.Second
	withDeadline := func(tr *urlfetch.Transport) { tr.Deadline = deadline }
	const short = 300 * time.Millisecond // for the checks that are not timed
	withShort := func(tr *urlfetch.Transport) { tr.Deadline = short }
	check := func(t *testing.T, elapsed time.Duration) {
		t.Helper()
		if elapsed < deadline || elapsed >= urlfetch.DefaultDeadline-time.Second {
			t.Errorf("ended after %v, want at the %v deadline, well short of the %v default", elapsed, deadline, urlfetch.DefaultDeadline)
		}
	}

	t.Run("before the reply", func(t *testing.T) {
		t.Parallel() // they wait; they do not work
		f := newFixture(t, stallServer(t, false), withDeadline)
		start := time.Now()
		_, err := f.get(t, f.url("/"))
		check(t, time.Since(start))
		checkDeadlineError(t, err)
	})
	t.Run("reading the body", func(t *testing.T) {
		t.Parallel() // they wait; they do not work
		f := newFixture(t, stallServer(t, true), withDeadline)
		start := time.Now()
		resp, err := f.get(t, f.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		check(t, time.Since(start))
		checkDeadlineError(t, err)
		if n != 100 {
			t.Errorf("read %d bytes before the deadline, want 100", n)
		}
	})
	t.Run("a shorter context deadline wins", func(t *testing.T) {
		t.Parallel() // they wait; they do not work
		// The Transport's deadline is 100 times the context's: only the
		// context can have ended the exchange before it.
		const long = 10 * time.Second
		f := newFixture(t, stallServer(t, false), func(tr *urlfetch.Transport) { tr.Deadline = long })
		ctx, cancel := context.WithTimeout(context.Background(), long/100)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url("/"), nil)
		start := time.Now()
		_, err := f.tr.RoundTrip(req)
		if elapsed := time.Since(start); elapsed >= long {
			t.Errorf("ended after %v, want the context's %v", elapsed, long/100)
		}
		checkDeadlineError(t, err)
	})
	t.Run("unknown-length request body", func(t *testing.T) {
		t.Parallel() // they wait; they do not work
		f := newFixture(t, stallServer(t, false), withShort)
		pr, pw := io.Pipe() // never written: the body never ends
		defer pw.Close()
		req, _ := http.NewRequest(http.MethodPost, f.url("/"), pr)
		_, err := f.tr.RoundTrip(req)
		checkDeadlineError(t, err)
		if f.attempts() != 0 {
			t.Error("a connection was made before the body was read")
		}
	})
}

// TestDeadlineWhileReading checks, on synctest's clock, that the deadline
// ends the reading of a body the server stops sending exactly at the
// deadline, counted from the start of the exchange: the server is the
// other end of a net.Pipe that sends the headers and 100 of the 1,000
// bytes it announces.
func TestDeadlineWhileReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const deadline = 3 * time.Second
		connect := func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
			client, srv := net.Pipe()
			go func() {
				defer srv.Close()
				if _, err := http.ReadRequest(bufio.NewReader(srv)); err != nil {
					return
				}
				io.WriteString(srv, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
				srv.Write(make([]byte, 100))
				io.Copy(io.Discard, srv) // until the client closes
			}()
			return client, nil
		}
		tr := &urlfetch.Transport{
			Dialer: sockets.Dialer{
				Resolver: lab.NewResolver(map[string][]string{publicHost: {publicAddr}}),
				Connect:  connect,
			},
			Deadline: deadline,
		}
		defer tr.CloseIdleConnections()
		start := time.Now()
		resp, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+"/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if elapsed := time.Since(start); elapsed != deadline {
			t.Errorf("ended after %v, want %v", elapsed, deadline)
		}
		checkDeadlineError(t, err)
		if n != 100 {
			t.Errorf("read %d bytes before the deadline, want 100", n)
		}
	})
}

// TestDeadlineValues checks the default, the maximum and the background
// maximum of the deadline in a synctest bubble, where time is simulated:
// the server is the other end of a net.Pipe that never answers.
func TestDeadlineValues(t *testing.T) {
	tests := []struct {
		name       string
		deadline   time.Duration
		background bool
		ctx        time.Duration // a context deadline; 0: none
		want       time.Duration
	}{
		{"zero means 5 s", 0, false, 0, 5 * time.Second},
		{"set", 12 * time.Second, false, 0, 12 * time.Second},
		{"clamped to 60 s", 2 * time.Minute, false, 0, 60 * time.Second},
		{"background keeps the 5 s default", 0, true, 0, 5 * time.Second},
		{"background allows 10 min", 10 * time.Minute, true, 0, 10 * time.Minute},
		{"background clamped to 10 min", time.Hour, true, 0, 10 * time.Minute},
		{"shorter context wins", 30 * time.Second, false, 7 * time.Second, 7 * time.Second},
		{"longer context loses", 30 * time.Second, false, time.Minute, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				connect := func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
					client, srv := net.Pipe()
					go func() {
						io.Copy(io.Discard, srv) // takes the request, never answers
						srv.Close()
					}()
					return client, nil
				}
				tr := &urlfetch.Transport{
					Dialer: sockets.Dialer{
						Resolver: lab.NewResolver(map[string][]string{publicHost: {publicAddr}}),
						Connect:  connect,
					},
					Deadline:   tt.deadline,
					Background: tt.background,
				}
				defer tr.CloseIdleConnections()
				ctx := context.Background()
				if tt.ctx > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.ctx)
					defer cancel()
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+publicHost+"/", nil)
				start := time.Now()
				_, err := tr.RoundTrip(req)
				if elapsed := time.Since(start); elapsed != tt.want {
					t.Errorf("deadline after %v, want %v", elapsed, tt.want)
				}
				checkDeadlineError(t, err)
			})
		})
	}
}
