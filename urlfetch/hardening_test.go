package urlfetch_test

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
)

// A caller's chunked encoding and trailers must not carry the headers the
// rules strip: the request goes out with a Content-Length and no trailer.
func TestTrailersAndTransferEncodingDropped(t *testing.T) {
	type seen struct {
		te      []string
		cl      int64
		trailer http.Header
	}
	got := make(chan seen, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		got <- seen{r.TransferEncoding, r.ContentLength, r.Trailer}
	}), false)
	f := newFixture(t, srv)
	for name, length := range map[string]int64{"known length": 7, "unknown length": -1} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+publicHost+":"+portOf(srv)+"/", strings.NewReader("payload"))
			req.ContentLength = length
			req.TransferEncoding = []string{"chunked"}
			req.Trailer = http.Header{"X-Forwarded-For": {"10.0.0.1"}, "Via": {"1.1 evil"}}
			resp, err := f.tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			s := <-got
			if len(s.te) != 0 || s.cl != 7 || len(s.trailer) != 0 {
				t.Fatalf("server saw Transfer-Encoding %v, Content-Length %d, trailers %v", s.te, s.cl, s.trailer)
			}
			if len(req.TransferEncoding) != 1 || len(req.Trailer) != 2 {
				t.Fatal("the caller's request was changed")
			}
		})
	}
}

// The Dialer's Policy is the Transport's one policy: a deny list set there
// is never silently lost.
func TestTransportDialerPolicy(t *testing.T) {
	srv := newServer(t, okHandler, false)
	f := newFixture(t, srv, func(tr *urlfetch.Transport) {
		tr.Dialer.Policy = sockets.PublicPolicy().Deny(netip.MustParsePrefix(publicAddr + "/32"))
	})
	_, err := f.get(t, "http://"+publicHost+":"+portOf(srv)+"/")
	var de *sockets.DeniedError
	if !errors.As(err, &de) || de.Rule != sockets.RuleDenyList {
		t.Fatalf("err = %v, want the Transport's deny list to refuse", err)
	}
	if f.attempts() != 0 {
		t.Fatalf("%d connection attempts", f.attempts())
	}
}

// TestValidate checks that Validate returns the error RoundTrip returns
// for a bad configuration: both match ErrConfig and hold the same cause,
// and RoundTrip's names the request besides.
func TestValidate(t *testing.T) {
	if err := (&urlfetch.Transport{}).Validate(); err != nil {
		t.Fatalf("zero Transport: %v", err)
	}
	for name, mk := range map[string]func() *urlfetch.Transport{
		"negative deadline": func() *urlfetch.Transport { return &urlfetch.Transport{Deadline: -1} },
		"app id with CRLF":  func() *urlfetch.Transport { return &urlfetch.Transport{AppID: "app\r\nX-Evil: 1"} },
		"missing CA file": func() *urlfetch.Transport {
			return &urlfetch.Transport{TLS: tlsconf.Config{CAFile: t.TempDir() + "/missing.pem"}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			tr := mk()
			tr.Dialer = noNetwork
			verr := tr.Validate()
			ve := mustKind(t, verr, urlfetch.ErrConfig)
			if ve.Err == nil || ve.Method != "" || ve.URL != "" {
				t.Errorf("Validate: %#v, want a cause and no request", ve)
			}
			if !final(verr) {
				t.Errorf("Validate: %v is not permanent", verr)
			}
			if again := tr.Validate(); again != verr {
				t.Errorf("Validate again: %v, want the same error", again)
			}
			_, rerr := tr.RoundTrip(mustGet(t, "http://"+publicHost+"/"))
			re := mustKind(t, rerr, urlfetch.ErrConfig)
			if re.Err != ve.Err || re.Method != http.MethodGet || re.URL != "http://"+publicHost+"/" {
				t.Errorf("RoundTrip: %#v, want the cause of Validate's %#v for the request", re, ve)
			}
		})
	}
}

// portOf returns srv's port.
func portOf(srv *server) string {
	_, port, _ := strings.Cut(srv.addr(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(srv.addr(), ":")
	}
	return port
}
