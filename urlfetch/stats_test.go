package urlfetch_test

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbound-go/outbound/urlfetch"
)

// statsLog collects what OnStats reports.
type statsLog struct {
	mu    sync.Mutex
	stats []urlfetch.Stats
	reqs  []*http.Request
}

func (l *statsLog) record(req *http.Request, s urlfetch.Stats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats = append(l.stats, s)
	l.reqs = append(l.reqs, req)
}

func (l *statsLog) all() []urlfetch.Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]urlfetch.Stats(nil), l.stats...)
}

func (l *statsLog) sum() urlfetch.Stats {
	var s urlfetch.Stats
	for _, x := range l.all() {
		s.BytesSent += x.BytesSent
		s.BytesReceived += x.BytesReceived
	}
	return s
}

// echoServer reads the request body and answers with size bytes.
func echoServer(t *testing.T, size int64, tls bool) *server {
	return newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		bodyHandler(size, true)(w, r)
	}), tls)
}

// settle closes the Transport's idle connections and waits until the
// server has closed each connection it accepted, so that its counts are
// final.
func settle(t *testing.T, f *fixture) {
	t.Helper()
	f.tr.CloseIdleConnections()
	for range f.srv.lis.accepts.Load() {
		<-f.srv.closed
	}
}

// TestStatsExact checks that the counts are the bytes on the wire: what the
// server read and wrote, to the byte, for one exchange, for exchanges
// sharing a kept-alive connection, and for concurrent exchanges.
func TestStatsExact(t *testing.T) {
	const reqBody, respBody = 1000, 5000
	post := func(t *testing.T, f *fixture) {
		req, _ := http.NewRequest(http.MethodPost, f.url("/"), strings.NewReader(strings.Repeat("x", reqBody)))
		resp, err := f.tr.RoundTrip(req)
		if err != nil {
			t.Error(err)
			return
		}
		if n, err := drain(t, resp.Body); n != respBody || err != nil {
			t.Errorf("read %d bytes, %v", n, err)
		}
		resp.Body.Close()
	}
	tests := []struct {
		name           string
		goroutines, of int
	}{
		{"one exchange", 1, 1},
		{"kept alive", 1, 3},
		{"concurrent", 8, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log statsLog
			f := newFixture(t, echoServer(t, respBody, false), func(tr *urlfetch.Transport) { tr.OnStats = log.record })
			var wg sync.WaitGroup
			for range tt.goroutines {
				wg.Go(func() {
					for range tt.of {
						post(t, f)
					}
				})
			}
			wg.Wait()
			settle(t, f)
			stats := log.all()
			if len(stats) != tt.goroutines*tt.of {
				t.Fatalf("%d reports, want %d", len(stats), tt.goroutines*tt.of)
			}
			for _, s := range stats {
				if s.BytesSent <= reqBody || s.BytesReceived <= respBody || s.BytesSent > reqBody+500 || s.BytesReceived > respBody+500 {
					t.Errorf("implausible %+v for bodies of %d and %d bytes", s, reqBody, respBody)
				}
			}
			sum := log.sum()
			if sum.BytesSent != f.srv.lis.read.Load() || sum.BytesReceived != f.srv.lis.written.Load() {
				t.Errorf("reported %+v, the server read %d and wrote %d", sum, f.srv.lis.read.Load(), f.srv.lis.written.Load())
			}
			if tt.goroutines == 1 && f.srv.lis.accepts.Load() != 1 {
				t.Errorf("%d connections, want 1 kept alive", f.srv.lis.accepts.Load())
			}
		})
	}
}

// TestStatsTLS checks that the handshake counts for the first exchange of
// a connection, and that a failed handshake counts for the exchange that
// made it.
func TestStatsTLS(t *testing.T) {
	srv := echoServer(t, 100, true)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	var log statsLog
	f := newFixture(t, srv, func(tr *urlfetch.Transport) {
		tr.TLS.RootCAs = pool
		tr.OnStats = log.record
	})
	for range 2 {
		resp, err := f.get(t, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		urlfetch.ReadAll(resp)
	}
	settle(t, f)
	s := log.all()
	if len(s) != 2 || s[0].BytesSent <= s[1].BytesSent+200 || s[0].BytesReceived <= s[1].BytesReceived+200 {
		t.Errorf("stats %+v: want the first, with the handshake, well above the second", s)
	}
	// The server also wrote and read the TLS alerts that close the
	// connection, after the exchanges ended.
	sum := log.sum()
	if d := f.srv.lis.read.Load() - sum.BytesSent; d < 0 || d > 100 {
		t.Errorf("reported %d bytes sent, the server read %d", sum.BytesSent, f.srv.lis.read.Load())
	}
	if d := f.srv.lis.written.Load() - sum.BytesReceived; d < 0 || d > 100 {
		t.Errorf("reported %d bytes received, the server wrote %d", sum.BytesReceived, f.srv.lis.written.Load())
	}

	var bad statsLog
	g := newFixture(t, srv, func(tr *urlfetch.Transport) { tr.OnStats = bad.record })
	if _, err := g.get(t, srv.URL); err == nil {
		t.Fatal("no certificate error")
	}
	if s := bad.all(); len(s) != 1 || s[0].BytesSent == 0 || s[0].BytesReceived == 0 {
		t.Errorf("failed handshake: stats %+v, want the handshake's bytes", s)
	}
}

// TestStatsRefused checks that a refused request is reported, with
// nothing sent, and with the caller's request.
func TestStatsRefused(t *testing.T) {
	var log statsLog
	f := newFixture(t, newServer(t, okHandler, false), func(tr *urlfetch.Transport) { tr.OnStats = log.record })
	req := &http.Request{Method: "TRACE", URL: mustParse(t, f.url("/")), Header: http.Header{}}
	f.tr.RoundTrip(req)
	req2 := mustGet(t, "http://"+privateHost+"/")
	f.tr.RoundTrip(req2)
	if s := log.all(); len(s) != 2 || s[0] != (urlfetch.Stats{}) || s[1] != (urlfetch.Stats{}) {
		t.Fatalf("stats %+v, want two zero reports", s)
	}
	if log.reqs[0] != req || log.reqs[1] != req2 {
		t.Error("OnStats did not get the caller's requests")
	}
}

// TestStatsCompressed checks that a compressed reply counts as it
// travelled, not as it was decompressed.
func TestStatsCompressed(t *testing.T) {
	plain := strings.Repeat("a", 100_000)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	io.WriteString(zw, plain)
	zw.Close()
	var log statsLog
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(zipped.Bytes())
	}), false)
	f := newFixture(t, srv, func(tr *urlfetch.Transport) { tr.OnStats = log.record })
	resp, err := f.get(t, f.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := urlfetch.ReadAll(resp)
	if err != nil || len(b) != len(plain) {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	settle(t, f)
	if s := log.sum(); s.BytesReceived != f.srv.lis.written.Load() || s.BytesReceived > int64(zipped.Len())+500 {
		t.Errorf("received %d, the server wrote %d, compressed body of %d", s.BytesReceived, f.srv.lis.written.Load(), zipped.Len())
	}
}

// TestStatsAtDeadline checks that an exchange whose body is never read
// nor closed still ends, and is reported, at its deadline.
func TestStatsAtDeadline(t *testing.T) {
	reported := make(chan urlfetch.Stats, 1)
	f := newFixture(t, stallServer(t, true), func(tr *urlfetch.Transport) {
		tr.Deadline = 50 * time.Millisecond
		tr.OnStats = func(_ *http.Request, s urlfetch.Stats) { reported <- s }
	})
	resp, err := f.get(t, f.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	s := <-reported // the body is left alone
	if s.BytesSent == 0 || s.BytesReceived < 100 {
		t.Errorf("stats %+v, want the request and the 100 bytes sent before the stall", s)
	}
	_, err = io.ReadAll(resp.Body)
	checkDeadlineError(t, err)
	resp.Body.Close()
	select {
	case s := <-reported:
		t.Errorf("reported twice, again with %+v", s)
	default:
	}
}
