package urlfetch_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/urlfetch"
)

// uploadServer counts the request body bytes it receives.
func uploadServer(t *testing.T) (*server, *atomic.Int64) {
	var got atomic.Int64
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Add(n)
	}), false)
	return srv, &got
}

// unknownLength hides a body's length from net/http and from the
// Transport: a request made with it has ContentLength 0 and a body, which
// means "unknown".
type unknownLength struct{ *closeRecorder }

func TestRequestBodyLimit(t *testing.T) {
	const limit = urlfetch.MaxRequestBody
	tests := []struct {
		name    string
		size    int64
		known   bool // ContentLength announced
		allowed bool
	}{
		{"exactly the limit, known length", limit, true, true},
		{"one byte over, known length", limit + 1, true, false},
		{"11 MiB, known length", 11 << 20, true, false},
		{"exactly the limit, unknown length", limit, false, true},
		{"one byte over, unknown length", limit + 1, false, false},
		{"11 MiB, unknown length", 11 << 20, false, false},
		{"empty, unknown length", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := uploadServer(t)
			f := newFixture(t, srv)
			body := newBody(tt.size)
			req, _ := http.NewRequest(http.MethodPost, f.url("/upload"), unknownLength{body})
			if tt.known {
				req.ContentLength = tt.size
			}
			resp, err := f.tr.RoundTrip(req)
			if !body.closed.Load() {
				t.Error("request body not closed")
			}
			if tt.allowed {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got.Load() != tt.size {
					t.Errorf("server received %d bytes, want %d", got.Load(), tt.size)
				}
				return
			}
			mustKind(t, err, urlfetch.ErrPayloadTooLarge)
			le, ok := errors.AsType[*urlfetch.LimitError](err)
			if !ok || le.Limit != limit {
				t.Fatalf("error %v: want a *LimitError of limit %d", err, limit)
			}
			if tt.known && le.Size != tt.size || !tt.known && le.Size != -1 {
				t.Errorf("LimitError.Size = %d", le.Size)
			}
			if !final(err) {
				t.Error("payload too large is not final")
			}
			if n := body.read.Load(); tt.known && n != 0 || n > limit+1 {
				t.Errorf("%d bytes read from the body, want at most %d", n, limit+1)
			}
			if f.attempts() != 0 || srv.lis.accepts.Load() != 0 || got.Load() != 0 {
				t.Errorf("something was sent: %d connection attempts, %d bytes at the server", f.attempts(), got.Load())
			}
		})
	}
}

// TestRequestBodyUnknownLength checks that a body of unknown length,
// read in full before sending, goes out with its Content-Length.
func TestRequestBodyUnknownLength(t *testing.T) {
	type got struct {
		body   string
		length int64
		te     []string
	}
	ch := make(chan got, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{string(b), r.ContentLength, r.TransferEncoding}
	}), false)
	f := newFixture(t, srv)
	req, _ := http.NewRequest(http.MethodPost, f.url("/"), io.NopCloser(bytes.NewBufferString("payload")))
	req.ContentLength = -1
	resp, err := f.tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if g := <-ch; g.body != "payload" || g.length != 7 || len(g.te) != 0 {
		t.Fatalf("server got %+v, want the body with Content-Length 7", g)
	}
}

func TestResponseLimit(t *testing.T) {
	const limit = urlfetch.MaxResponseBody
	tests := []struct {
		name  string
		size  int64
		known bool
	}{
		{"exactly the limit, known length", limit, true},
		{"one byte over, known length", limit + 1, true},
		{"exactly the limit, chunked", limit, false},
		{"one byte over, chunked", limit + 1, false},
		{"40 MiB, known length", 40 << 20, true},
		{"40 MiB, chunked", 40 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, newServer(t, bodyHandler(tt.size, tt.known), false))
			resp, err := f.get(t, f.url("/big"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			n, err := drain(t, resp.Body)
			if tt.size <= limit {
				if err != nil || n != tt.size {
					t.Fatalf("read %d bytes, error %v; want %d and the end", n, err, tt.size)
				}
				return
			}
			if n != limit {
				t.Errorf("read %d bytes, want exactly %d", n, limit)
			}
			mustKind(t, err, urlfetch.ErrResponseTooLarge)
			if _, ok := errors.AsType[*urlfetch.LimitError](err); !ok {
				t.Errorf("error %v: no *LimitError", err)
			}
			// The end is sticky.
			if _, err2 := resp.Body.Read(make([]byte, 10)); !errors.Is(err2, urlfetch.ErrResponseTooLarge) {
				t.Errorf("Read after the cut returned %v", err2)
			}
		})
	}
}

// TestResponseLimitDecompressed checks that the limit applies to the body
// the application reads: a small compressed reply that decompresses past
// the limit is cut.
func TestResponseLimitDecompressed(t *testing.T) {
	var zipped bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zipped, gzip.BestSpeed)
	io.CopyBuffer(zw, &pattern{n: 40 << 20}, make([]byte, 64<<10))
	zw.Close()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(zipped.Bytes())
	}), false)
	f := newFixture(t, srv)
	resp, err := f.get(t, f.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := drain(t, resp.Body)
	if n != urlfetch.MaxResponseBody {
		t.Errorf("read %d bytes, want %d", n, urlfetch.MaxResponseBody)
	}
	mustKind(t, err, urlfetch.ErrResponseTooLarge)
}

func TestStrictResponseLimit(t *testing.T) {
	const limit = urlfetch.MaxResponseBody
	strict := func(tr *urlfetch.Transport) { tr.StrictResponseLimit = true }
	tests := []struct {
		name  string
		size  int64
		known bool
	}{
		{"40 MiB, known length", 40 << 20, true},
		{"one byte over, chunked", limit + 1, false},
		{"exactly the limit, known length", limit, true},
		{"small, chunked", 1000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stats []urlfetch.Stats
			f := newFixture(t, newServer(t, bodyHandler(tt.size, tt.known), false), strict,
				func(tr *urlfetch.Transport) {
					tr.OnStats = func(_ *http.Request, s urlfetch.Stats) { stats = append(stats, s) }
				})
			resp, err := f.get(t, f.url("/"))
			if tt.size > limit {
				if resp != nil {
					t.Fatal("a response came with the error")
				}
				mustKind(t, err, urlfetch.ErrResponseTooLarge)
				if len(stats) != 1 {
					t.Errorf("OnStats called %d times, want once", len(stats))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.ContentLength != tt.size {
				t.Errorf("ContentLength %d, want %d", resp.ContentLength, tt.size)
			}
			n, err := drain(t, resp.Body)
			resp.Body.Close()
			if err != nil || n != tt.size {
				t.Fatalf("read %d bytes, error %v", n, err)
			}
			if len(stats) != 1 {
				t.Errorf("OnStats called %d times, want once", len(stats))
			}
		})
	}
}

func TestReadAll(t *testing.T) {
	for _, known := range []bool{true, false} {
		f := newFixture(t, newServer(t, bodyHandler(100_000, known), false))
		resp, err := f.get(t, f.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := urlfetch.ReadAll(resp)
		if err != nil || len(b) != 100_000 {
			t.Fatalf("known length %v: %d bytes, %v", known, len(b), err)
		}
		if n, _ := drain(t, bytes.NewReader(b)); n != 100_000 {
			t.Fatal("wrong content")
		}
		if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
			t.Error("body not closed by ReadAll")
		}
	}
	f := newFixture(t, newServer(t, bodyHandler(urlfetch.MaxResponseBody+10, true), false))
	resp, err := f.get(t, f.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := urlfetch.ReadAll(resp)
	if len(b) != urlfetch.MaxResponseBody || !errors.Is(err, urlfetch.ErrResponseTooLarge) {
		t.Fatalf("got %d bytes and %v, want %d and the truncation error", len(b), err, urlfetch.MaxResponseBody)
	}
	// A body longer than announced (not from net/http) is read in full.
	r := &http.Response{ContentLength: 3, Body: io.NopCloser(bytes.NewReader([]byte("abcdef")))}
	if b, err := urlfetch.ReadAll(r); string(b) != "abcdef" || err != nil {
		t.Fatalf("got %q, %v", b, err)
	}
}
