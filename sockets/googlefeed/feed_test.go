package googlefeed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// embeddedSync is the syncToken of the files embedded in package sockets.
const embeddedSync = 1714053903689

// file is a goog.json or cloud.json, read from package sockets' embedded
// copies and changed by the tests.
type file struct {
	SyncToken    string              `json:"syncToken"`
	CreationTime string              `json:"creationTime"`
	Prefixes     []map[string]string `json:"prefixes"`
}

func readFile(t *testing.T, name string) file {
	t.Helper()
	b, err := os.ReadFile("../" + name)
	if err != nil {
		t.Fatal(err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if f.SyncToken != strconv.Itoa(embeddedSync) {
		t.Fatalf("%s: syncToken %s, want %d", name, f.SyncToken, embeddedSync)
	}
	return f
}

// at returns a copy of f with the given syncToken and creationTime.
func (f file) at(token uint64, created string) file {
	f.SyncToken = strconv.FormatUint(token, 10)
	f.CreationTime = created
	f.Prefixes = append([]map[string]string(nil), f.Prefixes...)
	return f
}

// plus returns a copy of f with IPv4 prefixes added.
func (f file) plus(prefixes ...string) file {
	f.Prefixes = append([]map[string]string(nil), f.Prefixes...)
	for _, p := range prefixes {
		f.Prefixes = append(f.Prefixes, map[string]string{"ipv4Prefix": p})
	}
	return f
}

// keep returns a copy of f with only the prefixes keep accepts.
func (f file) keep(keep func(prefix string) bool) file {
	var out []map[string]string
	for _, p := range f.Prefixes {
		s := p["ipv4Prefix"] + p["ipv6Prefix"]
		if keep(s) {
			out = append(out, p)
		}
	}
	f.Prefixes = out
	return f
}

func (f file) bytes(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// server serves a goog.json and a cloud.json on loopback.
type server struct {
	*httptest.Server

	mu     sync.Mutex
	body   map[string][]byte // by path: /goog.json, /cloud.json
	status map[string]int    // by path; zero means 200
	hits   map[string]int    // requests, by path
}

func newServer(t *testing.T) *server {
	s := &server{body: map[string][]byte{}, status: map[string]int{}, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		body, status := s.body[r.URL.Path], s.status[r.URL.Path]
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		if status != 0 {
			http.Error(w, "failed", status)
			return
		}
		if body == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) serve(goog, cloud []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body["/goog.json"], s.body["/cloud.json"] = goog, cloud
}

func (s *server) fail(path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[path] = status
}

func (s *server) hitsOf(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// feed returns a Feed that fetches from s with a plain client, whose
// requests go to s alone.
func (s *server) feed() *Feed {
	return &Feed{Client: s.Client(), GoogURL: s.URL + "/goog.json", CloudURL: s.URL + "/cloud.json"}
}

// The dates and tokens of the newer files the tests serve.
const (
	newerSync    = embeddedSync + 86_400_000 // a day later
	newerCreated = "2024-04-26T07:05:03.68994"
	// added is a public range, in no embedded file, that the newer
	// goog.json adds; probe is an address in it.
	added = "1.2.3.0/24"
	probe = "1.2.3.4:443"
)

// padTo pads a JSON document with trailing spaces to n bytes.
func padTo(t *testing.T, b []byte, n int) []byte {
	t.Helper()
	if len(b) > n {
		t.Fatalf("document of %d bytes, longer than %d", len(b), n)
	}
	return append(b, bytes.Repeat([]byte(" "), n-len(b))...)
}

// TestUpdate serves one pair of files to a fresh Feed and checks what
// Update installs or why it refuses them.
func TestUpdate(t *testing.T) {
	goog, cloud := readFile(t, "goog.json"), readFile(t, "cloud.json")
	newGoog := goog.at(newerSync, newerCreated).plus(added)
	newCloud := cloud.at(newerSync, newerCreated)
	isV6 := func(s string) bool { return strings.Contains(s, ":") }
	v4Kept := 0

	tests := []struct {
		name        string
		goog, cloud []byte
		googStatus  int // zero: 200
		cloudStatus int
		maxShrink   float64
		wantErr     string // empty: installed (or no change when wantSync is the embedded one)
		wantSync    uint64 // the syncToken held after
		wantCloud   bool   // cloud.json fetched
	}{
		{name: "newer", goog: newGoog.bytes(t), cloud: newCloud.bytes(t), wantSync: newerSync, wantCloud: true},
		{name: "equal", goog: goog.plus(added).bytes(t), cloud: cloud.bytes(t), wantSync: embeddedSync},
		{name: "older", goog: goog.at(embeddedSync-1, "2024-04-25T07:05:03.688").plus(added).bytes(t), cloud: newCloud.bytes(t),
			wantErr: "googlefeed: goog.json: syncToken 1714053903688 is older than the one held, 1714053903689", wantSync: embeddedSync},
		{name: "newer cloud.json than goog.json", goog: newGoog.bytes(t), cloud: cloud.at(newerSync+1, newerCreated).bytes(t), wantSync: newerSync, wantCloud: true},
		{name: "cloud.json of an older sync", goog: newGoog.bytes(t), cloud: cloud.at(newerSync-1, newerCreated).bytes(t),
			wantErr: "googlefeed: cloud.json: syncToken 1714140303688 is older than goog.json's, 1714140303689", wantSync: embeddedSync, wantCloud: true},
		{name: "cloud.json of the embedded sync", goog: newGoog.bytes(t), cloud: cloud.bytes(t),
			wantErr: "older than goog.json's", wantSync: embeddedSync, wantCloud: true},
		{name: "truncated goog.json", goog: newGoog.bytes(t)[:len(newGoog.bytes(t))/2], cloud: newCloud.bytes(t),
			wantErr: "googlefeed: goog.json: unexpected end of JSON input", wantSync: embeddedSync},
		{name: "truncated cloud.json", goog: newGoog.bytes(t), cloud: newCloud.bytes(t)[:1000],
			wantErr: "googlefeed: cloud.json: unexpected end of JSON input", wantSync: embeddedSync, wantCloud: true},
		{name: "malformed goog.json", goog: []byte("<html>Service Unavailable</html>"), cloud: newCloud.bytes(t),
			wantErr: "googlefeed: goog.json: invalid character '<'", wantSync: embeddedSync},
		{name: "goog.json with a malformed prefix", goog: newGoog.plus("1.2.3.0/33").bytes(t), cloud: newCloud.bytes(t),
			wantErr: `googlefeed: sockets: google ranges: prefix 85: invalid "1.2.3.0/33"`, wantSync: embeddedSync, wantCloud: true},
		{name: "goog.json with a malformed creationTime", goog: newGoog.at(newerSync, "yesterday").bytes(t), cloud: newCloud.bytes(t),
			wantErr: "googlefeed: sockets: google ranges: creationTime", wantSync: embeddedSync, wantCloud: true},
		{name: "syncToken not a number", goog: bytes.Replace(newGoog.bytes(t), []byte(`"1714140303689"`), []byte(`"1714140303689x"`), 1), cloud: newCloud.bytes(t),
			wantErr: `googlefeed: goog.json: syncToken "1714140303689x" is not a number`, wantSync: embeddedSync},
		{name: "empty goog.json", goog: []byte{}, cloud: newCloud.bytes(t),
			wantErr: "googlefeed: goog.json: unexpected end of JSON input", wantSync: embeddedSync},
		{name: "syncToken missing", goog: []byte(`{"prefixes": [{"ipv4Prefix": "1.2.3.0/24"}]}`), cloud: newCloud.bytes(t),
			wantErr: `googlefeed: goog.json: syncToken "" is not a number`, wantSync: embeddedSync},
		{name: "syncToken negative", goog: bytes.Replace(newGoog.bytes(t), []byte(`"1714140303689"`), []byte(`"-1"`), 1), cloud: newCloud.bytes(t),
			wantErr: `googlefeed: goog.json: syncToken "-1" is not a number`, wantSync: embeddedSync},
		{name: "empty goog.json prefixes", goog: newGoog.keep(func(string) bool { return false }).bytes(t), cloud: newCloud.bytes(t),
			wantErr: "googlefeed: sockets: google ranges: no prefixes", wantSync: embeddedSync, wantCloud: true},
		{name: "empty cloud.json prefixes", goog: newGoog.bytes(t), cloud: newCloud.keep(func(string) bool { return false }).bytes(t),
			wantErr: "googlefeed: sockets: cloud ranges: no prefixes", wantSync: embeddedSync, wantCloud: true},
		{name: "goog.json all inside cloud.json", goog: newGoog.keep(func(string) bool { return false }).plus("34.35.0.0/16").bytes(t), cloud: newCloud.bytes(t),
			wantErr: "googlefeed: goog.json minus cloud.json leaves no ranges", wantSync: embeddedSync, wantCloud: true},
		{name: "IPv6 ranges gone", goog: newGoog.keep(func(s string) bool { return !isV6(s) }).bytes(t), cloud: newCloud.bytes(t),
			wantErr: "googlefeed: update takes away 100.0% of the IPv6 addresses held, more than MaxShrink (0.1)", wantSync: embeddedSync, wantCloud: true},
		{name: "IPv4 ranges shrink beyond MaxShrink", goog: newGoog.keep(func(s string) bool {
			if isV6(s) {
				return true
			}
			v4Kept++
			return v4Kept <= 10
		}).bytes(t), cloud: newCloud.bytes(t),
			wantErr: "of the IPv4 addresses held, more than MaxShrink (0.1)", wantSync: embeddedSync, wantCloud: true},
		{name: "IPv6 ranges gone, MaxShrink 1", goog: newGoog.keep(func(s string) bool { return !isV6(s) }).bytes(t), cloud: newCloud.bytes(t),
			maxShrink: 1, wantSync: newerSync, wantCloud: true},
		{name: "IPv4 ranges shrink within MaxShrink", goog: newGoog.keep(func(s string) bool { return s != "8.8.4.0/24" }).bytes(t), cloud: newCloud.bytes(t),
			wantSync: newerSync, wantCloud: true},
		{name: "goog.json 500", goog: newGoog.bytes(t), cloud: newCloud.bytes(t), googStatus: 500,
			wantErr: "googlefeed: goog.json: GET http://127.0.0.1:", wantSync: embeddedSync},
		{name: "cloud.json 500", goog: newGoog.bytes(t), cloud: newCloud.bytes(t), cloudStatus: 500,
			wantErr: "/cloud.json: 500 Internal Server Error", wantSync: embeddedSync, wantCloud: true},
		{name: "goog.json 404", goog: nil, cloud: newCloud.bytes(t),
			wantErr: "/goog.json: 404 Not Found", wantSync: embeddedSync},
		{name: "goog.json of 16 MiB", goog: padTo(t, newGoog.bytes(t), 16<<20), cloud: newCloud.bytes(t), wantSync: newerSync, wantCloud: true},
		{name: "goog.json over 16 MiB", goog: padTo(t, newGoog.bytes(t), 16<<20+1), cloud: newCloud.bytes(t),
			wantErr: "googlefeed: goog.json: body larger than 16 MiB", wantSync: embeddedSync},
		{name: "cloud.json over 16 MiB", goog: newGoog.bytes(t), cloud: padTo(t, newCloud.bytes(t), 16<<20+1),
			wantErr: "googlefeed: cloud.json: body larger than 16 MiB", wantSync: embeddedSync, wantCloud: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.serve(tt.goog, tt.cloud)
			if tt.googStatus != 0 {
				s.fail("/goog.json", tt.googStatus)
			}
			if tt.cloudStatus != 0 {
				s.fail("/cloud.json", tt.cloudStatus)
			}
			f := s.feed()
			f.MaxShrink = tt.maxShrink
			before := f.Ranges()

			err := f.Update(t.Context())
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Update: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Update: %v, want an error containing %q", err, tt.wantErr)
			}
			if got := f.Err(); got != err {
				t.Errorf("Err() = %v, want Update's %v", got, err)
			}
			if got := s.hitsOf("/cloud.json") > 0; got != tt.wantCloud {
				t.Errorf("cloud.json fetched: %v, want %v", got, tt.wantCloud)
			}
			g := f.Ranges()
			if g.SyncToken != strconv.FormatUint(tt.wantSync, 10) {
				t.Fatalf("SyncToken %s after the update, want %d", g.SyncToken, tt.wantSync)
			}
			if tt.wantSync == embeddedSync {
				if g != before {
					t.Error("the ranges held changed")
				}
				return
			}
			want, _ := time.Parse("2006-01-02T15:04:05.999999999", newerCreated)
			if !g.Created.Equal(want) {
				t.Errorf("Created %v, want %v", g.Created, want)
			}
			if !g.Contains(netip.MustParseAddrPort(probe).Addr()) {
				t.Errorf("the installed ranges do not hold %s", added)
			}
			if g.Contains(netip.MustParseAddr("34.35.0.1")) {
				t.Error("the installed ranges hold a cloud.json address")
			}
		})
	}
}

// TestUpdateSequence updates one Feed again and again: the floor moves up
// with each install, and Err follows the last update.
func TestUpdateSequence(t *testing.T) {
	goog, cloud := readFile(t, "goog.json"), readFile(t, "cloud.json")
	s := newServer(t)
	f := s.feed()

	step := func(name string, g, c file, wantErr string, wantSync uint64) {
		t.Helper()
		s.serve(g.bytes(t), c.bytes(t))
		err := f.Update(t.Context())
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("%s: Update: %v", name, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Fatalf("%s: Update: %v, want an error containing %q", name, err, wantErr)
		}
		if f.Err() != err {
			t.Errorf("%s: Err() = %v, want %v", name, f.Err(), err)
		}
		if got := f.Ranges().SyncToken; got != strconv.FormatUint(wantSync, 10) {
			t.Fatalf("%s: SyncToken %s, want %d", name, got, wantSync)
		}
	}
	// A cloud.json newer than its goog.json is fine.
	step("newer", goog.at(newerSync, newerCreated), cloud.at(newerSync+10, newerCreated), "", newerSync)
	// Newer than the embedded files, older than those held.
	step("between", goog.at(newerSync-1, newerCreated), cloud.at(newerSync-1, newerCreated),
		"syncToken 1714140303688 is older than the one held, 1714140303689", newerSync)
	step("same again", goog.at(newerSync, newerCreated), cloud.at(newerSync, newerCreated), "", newerSync)
	// goog.json newer, cloud.json older than the one held.
	step("cloud.json going back", goog.at(newerSync+5, newerCreated), cloud.at(newerSync+5, newerCreated),
		"cloud.json: syncToken 1714140303694 is older than the one held, 1714140303699", newerSync)
	// A big range, then its removal, judged against the data held, not
	// the embedded data.
	step("bigger", goog.at(newerSync+20, newerCreated).plus("1.0.0.0/8"), cloud.at(newerSync+20, newerCreated), "", newerSync+20)
	step("smaller again", goog.at(newerSync+30, newerCreated), cloud.at(newerSync+30, newerCreated),
		"of the IPv4 addresses held, more than MaxShrink", newerSync+20)
}

// TestUpdateConcurrent runs updates of the same newer files at once: one
// installs them, the others find them installed, and none fails.
func TestUpdateConcurrent(t *testing.T) {
	goog, cloud := readFile(t, "goog.json"), readFile(t, "cloud.json")
	s := newServer(t)
	s.serve(goog.at(newerSync, newerCreated).plus(added).bytes(t), cloud.at(newerSync, newerCreated).bytes(t))
	f := s.feed()
	p := sockets.DefaultPolicy().WithGoogleRangesFunc(f.Ranges)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = f.Update(t.Context()) })
	}
	for range 100 { // checks read the ranges while they are swapped
		_ = p.Check("tcp", "", netip.MustParseAddrPort(probe))
		_ = f.Err()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Update %d: %v", i, err)
		}
	}
	if got := f.Ranges().SyncToken; got != strconv.Itoa(newerSync) {
		t.Errorf("SyncToken %s, want %d", got, newerSync)
	}
}

// TestPolicyFollowsFeed: a policy built on Ranges refuses what the
// installed files say, from the check after the swap.
func TestPolicyFollowsFeed(t *testing.T) {
	goog, cloud := readFile(t, "goog.json"), readFile(t, "cloud.json")
	s := newServer(t)
	f := s.feed()
	p := sockets.DefaultPolicy().WithGoogleRangesFunc(f.Ranges)
	addr := netip.MustParseAddrPort(probe)

	if err := p.Check("tcp", "", addr); err != nil {
		t.Fatalf("before the update: %v", err)
	}
	googleRefused := func(when string, ap netip.AddrPort) {
		t.Helper()
		var denied *sockets.DeniedError
		if err := p.Check("tcp", "", ap); !errors.As(err, &denied) || denied.Rule != sockets.RuleGoogle {
			t.Errorf("%s: Check(%v) = %v, want a refusal by the Google rule", when, ap, err)
		}
	}
	googleRefused("before the update", netip.MustParseAddrPort("8.8.8.8:443"))

	s.serve(goog.at(newerSync, newerCreated).plus(added).bytes(t), cloud.at(newerSync, newerCreated).bytes(t))
	if err := f.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	googleRefused("after the update", addr)
	googleRefused("after the update", netip.MustParseAddrPort("8.8.8.8:443"))
	// The exceptions still apply.
	if err := p.Check("udp", "", netip.MustParseAddrPort("8.8.8.8:53")); err != nil {
		t.Errorf("Google Public DNS after the update: %v", err)
	}
	// A Google Cloud customer's address stays reachable.
	if err := p.Check("tcp", "", netip.MustParseAddrPort("34.35.0.1:443")); err != nil {
		t.Errorf("a cloud.json address after the update: %v", err)
	}
}

func TestNilClient(t *testing.T) {
	f := &Feed{GoogURL: "http://127.0.0.1:1/goog.json"}
	if err := f.Update(t.Context()); !errors.Is(err, errNoClient) {
		t.Errorf("Update: %v, want %v", err, errNoClient)
	}
	f = &Feed{}
	if err := f.Run(t.Context()); !errors.Is(err, errNoClient) {
		t.Errorf("Run: %v, want %v", err, errNoClient)
	}
	if err := f.Err(); !errors.Is(err, errNoClient) {
		t.Errorf("Err: %v, want %v", err, errNoClient)
	}
}

// TestRanges: before any update, Ranges is the embedded ranges of
// DefaultPolicy, with their dates, and Err is nil.
func TestRanges(t *testing.T) {
	var f Feed
	g, want := f.Ranges(), sockets.DefaultPolicy().GoogleRanges()
	if g.SyncToken != want.SyncToken || g.CloudSyncToken != want.CloudSyncToken || !g.Created.Equal(want.Created) {
		t.Errorf("Ranges() = sync %s/%s of %v, want %s/%s of %v", g.SyncToken, g.CloudSyncToken, g.Created, want.SyncToken, want.CloudSyncToken, want.Created)
	}
	if !slicesEqual(g.Prefixes(), want.Prefixes()) {
		t.Error("Ranges() holds other prefixes than DefaultPolicy's")
	}
	if f.Ranges() != g {
		t.Error("Ranges() returned another pointer on the second call")
	}
	if n := testing.AllocsPerRun(100, func() { _ = f.Ranges() }); n != 0 {
		t.Errorf("Ranges allocates %v times", n)
	}
	if err := f.Err(); err != nil {
		t.Errorf("Err() = %v before any update", err)
	}
	// A caller that changes the shared result does not move the floor.
	g.SyncToken = "1"
	if f.current().goog != embeddedSync {
		t.Error("changing Ranges' SyncToken changed the floor")
	}
}

func slicesEqual(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRunStops: Run returns ctx's error once ctx is canceled, while it
// waits for the next update and while an update is under way, and leaves
// no goroutine behind.
func TestRunStops(t *testing.T) {
	goog, cloud := readFile(t, "goog.json"), readFile(t, "cloud.json")
	newGoog, newCloud := goog.at(newerSync, newerCreated).bytes(t), cloud.at(newerSync, newerCreated).bytes(t)

	t.Run("waiting", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/goog.json" {
				w.Write(newGoog)
				return
			}
			w.Write(newCloud)
		}))
		defer srv.Close()
		// The update has read everything it needs, and checks ctx no
		// more, once it closes cloud.json's body.
		fetched := make(chan struct{})
		client := &http.Client{Transport: &onClose{base: srv.Client().Transport, path: "/cloud.json", closed: fetched}}
		f := &Feed{Client: client, GoogURL: srv.URL + "/goog.json", CloudURL: srv.URL + "/cloud.json", Interval: time.Hour}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()
		<-fetched
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
		if err := f.Err(); err != nil {
			t.Errorf("Err: %v", err)
		}
		if got := f.Ranges().SyncToken; got != strconv.Itoa(newerSync) {
			t.Errorf("SyncToken %s, want %d", got, newerSync)
		}
	})

	t.Run("fetching", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		entered := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-r.Context().Done() // never answers
		}))
		defer srv.Close()
		f := &Feed{Client: srv.Client(), GoogURL: srv.URL + "/goog.json", CloudURL: srv.URL + "/cloud.json"}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- f.Run(ctx) }()
		<-entered
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
		if err := f.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err: %v, want the canceled fetch's error", err)
		}
	})
}

// TestGauge reads the creation-time gauge while Run runs: the embedded
// files' time before the first update, the new files' after it, and
// nothing once Run has returned.
func TestGauge(t *testing.T) {
	goog, cloud := readFile(t, "goog.json"), readFile(t, "cloud.json")
	newGoog, newCloud := goog.at(newerSync, newerCreated).bytes(t), cloud.at(newerSync, newerCreated).bytes(t)

	var mu sync.Mutex
	googHits := 0
	first, release, second := make(chan struct{}), make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cloud.json" {
			w.Write(newCloud)
			return
		}
		mu.Lock()
		googHits++
		n := googHits
		mu.Unlock()
		switch n {
		case 1: // the first update: held until the test has read the gauge
			close(first)
			<-release
		case 2: // the second update: the first has finished
			close(second)
		}
		w.Write(newGoog)
	}))
	defer srv.Close()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	f := &Feed{
		Client: srv.Client(), GoogURL: srv.URL + "/goog.json", CloudURL: srv.URL + "/cloud.json",
		Interval: time.Millisecond, MeterProvider: mp,
	}

	gauge := func() (int64, bool) {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "outbound.google_ranges.creation_time" {
					continue
				}
				if sm.Scope.Name != obs.ScopeName {
					t.Errorf("gauge on the meter %q, want %q", sm.Scope.Name, obs.ScopeName)
				}
				if m.Unit != "s" {
					t.Errorf("unit %q, want s", m.Unit)
				}
				g, ok := m.Data.(metricdata.Gauge[int64])
				if !ok {
					t.Fatalf("data %T, want an int64 gauge", m.Data)
				}
				if len(g.DataPoints) != 1 {
					return 0, false
				}
				return g.DataPoints[0].Value, true
			}
		}
		return 0, false
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()

	<-first
	embedded := sockets.DefaultPolicy().GoogleRanges().Created.Unix()
	if v, ok := gauge(); !ok || v != embedded {
		t.Errorf("gauge before the first update: %d (%v), want %d", v, ok, embedded)
	}
	close(release)
	<-second
	want, _ := time.Parse("2006-01-02T15:04:05.999999999", newerCreated)
	if v, ok := gauge(); !ok || v != want.Unix() {
		t.Errorf("gauge after the first update: %d (%v), want %d", v, ok, want.Unix())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	if v, ok := gauge(); ok {
		t.Errorf("gauge after Run returned: %d, want none", v)
	}
}

// onClose is a RoundTripper that closes closed when the body of the first
// response to a request for path is closed.
type onClose struct {
	base   http.RoundTripper
	path   string
	closed chan struct{}
	once   sync.Once
}

func (o *onClose) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.base.RoundTrip(req)
	if err == nil && req.URL.Path == o.path {
		resp.Body = &closeHook{ReadCloser: resp.Body, hook: func() { o.once.Do(func() { close(o.closed) }) }}
	}
	return resp, err
}

type closeHook struct {
	io.ReadCloser
	hook func()
}

func (c *closeHook) Close() error {
	err := c.ReadCloser.Close()
	c.hook()
	return err
}
