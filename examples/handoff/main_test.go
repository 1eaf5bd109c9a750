package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
)

const (
	group    = "example.golang"
	newsHost = "news.example.com"
	publicIP = "93.184.216.34" // a public address; the Connector sends it to loopback
)

var testArticles = []article{
	{"First", "a@example.com", "Mon, 2 Nov 2026 10:00:00 +0000"},
	{"Second", "b@example.com", "Tue, 3 Nov 2026 10:00:00 +0000"},
	{"Third", "c@example.com", "Wed, 4 Nov 2026 10:00:00 +0000"},
}

func startServer(t *testing.T, articles []article) *newsServer {
	t.Helper()
	srv, err := startNewsServer(group, articles)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// dialer resolves newsHost to a public address, which the default policy
// checks, and connects it to srv on loopback.
func dialer(srv *newsServer) (*sockets.Dialer, *socketstest.Connector) {
	conn := &socketstest.Connector{Target: srv.Addr()}
	return &sockets.Dialer{
		Resolver: socketstest.NewResolver(map[string][]string{newsHost: {publicIP}}),
		Connect:  conn.Connect,
		Registry: new(sockets.Registry),
		AppID:    appID,
	}, conn
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRun(t *testing.T) {
	srv := startServer(t, testArticles)
	d, connector := dialer(srv)
	var out strings.Builder
	if err := run(testContext(t), d, newsHost+":119", group, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	wantOut := "request handler replied:\n" +
		"example.golang: 3 articles, numbered 1 to 3\n" +
		"the rest of the conversation was handed to a background task\n" +
		"background task, on the same connection:\n" +
		"     1  a@example.com                 First\n" +
		"     2  b@example.com                 Second\n" +
		"     3  c@example.com                 Third\n"
	if out.String() != wantOut {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), wantOut)
	}
	// One connection carried the whole conversation: the handler's GROUP,
	// then the task's OVER and QUIT.
	wantSessions := [][]string{{"GROUP " + group, "OVER 1-3", "QUIT"}}
	if got := srv.Sessions(); !slices.EqualFunc(got, wantSessions, slices.Equal) {
		t.Errorf("server sessions %q, want %q", got, wantSessions)
	}
	if a := connector.Attempts(); len(a) != 1 || a[0].String() != publicIP+":119" {
		t.Errorf("connections to %v, want one to %s:119", a, publicIP)
	}
	if n := d.Registry.Len(); n != 0 {
		t.Errorf("%d sockets still parked, want none", n)
	}
}

// TestHandOff takes the handler's steps one by one, to look at the
// connection between them.
func TestHandOff(t *testing.T) {
	srv := startServer(t, testArticles)
	d, _ := dialer(srv)
	ctx := testContext(t)

	conn, err := d.DialConn(ctx, "tcp", newsHost+":119")
	if err != nil {
		t.Fatal(err)
	}
	tk, _, err := openGroup(ctx, conn, group)
	if err != nil {
		t.Fatal(err)
	}
	tk.Descriptor, err = conn.Detach()
	if err != nil {
		t.Fatal(err)
	}

	// The original handle is retired.
	if _, err := conn.Write([]byte("QUIT\r\n")); !errors.Is(err, sockets.ErrHandedOff) {
		t.Errorf("Write on the handed-off connection: %v, want sockets.ErrHandedOff", err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, sockets.ErrHandedOff) {
		t.Errorf("Read on the handed-off connection: %v, want sockets.ErrHandedOff", err)
	}

	// Another application, even with the same Registry, cannot pick it up.
	other := &sockets.Dialer{Registry: d.Registry, AppID: "another-app"}
	_, err = other.Attach(tk.Descriptor)
	var hoe *sockets.HandOffError
	if !errors.Is(err, sockets.ErrWrongApp) || !errors.As(err, &hoe) {
		t.Fatalf("Attach by another application: %v, want a *sockets.HandOffError matching sockets.ErrWrongApp", err)
	}
	if err := finish(ctx, other, tk, io.Discard); !errors.Is(err, sockets.ErrWrongApp) {
		t.Errorf("finish by another application: %v, want sockets.ErrWrongApp", err)
	}

	// The refusals left the socket parked for its own application.
	var out strings.Builder
	if err := finish(ctx, d, tk, &out); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if !strings.Contains(out.String(), "Third") {
		t.Errorf("task output %q does not list the articles", out.String())
	}
	if err := finish(ctx, d, tk, io.Discard); !errors.Is(err, sockets.ErrStaleDescriptor) {
		t.Errorf("second finish with the same descriptor: %v, want sockets.ErrStaleDescriptor", err)
	}
	wantSessions := [][]string{{"GROUP " + group, "OVER 1-3", "QUIT"}}
	if got := srv.Sessions(); !slices.EqualFunc(got, wantSessions, slices.Equal) {
		t.Errorf("server sessions %q, want %q", got, wantSessions)
	}
}

func TestRunNewestTen(t *testing.T) {
	var articles []article
	for range 12 {
		articles = append(articles, article{"Subject", "x@example.com", "Mon, 2 Nov 2026 10:00:00 +0000"})
	}
	srv := startServer(t, articles)
	d, _ := dialer(srv)
	if err := run(testContext(t), d, newsHost+":119", group, io.Discard); err != nil {
		t.Fatalf("run: %v", err)
	}
	wantSessions := [][]string{{"GROUP " + group, "OVER 3-12", "QUIT"}}
	if got := srv.Sessions(); !slices.EqualFunc(got, wantSessions, slices.Equal) {
		t.Errorf("server sessions %q, want %q", got, wantSessions)
	}
}

func TestRunEmptyGroup(t *testing.T) {
	srv := startServer(t, nil)
	d, _ := dialer(srv)
	if err := run(testContext(t), d, newsHost+":119", group, io.Discard); err != nil {
		t.Fatalf("run: %v", err)
	}
	wantSessions := [][]string{{"GROUP " + group, "QUIT"}}
	if got := srv.Sessions(); !slices.EqualFunc(got, wantSessions, slices.Equal) {
		t.Errorf("server sessions %q, want %q", got, wantSessions)
	}
}

// Without a Registry nothing can be handed off: the handler answers 502 and
// enqueues no task.
func TestHandlerNoRegistry(t *testing.T) {
	srv := startServer(t, testArticles)
	d, _ := dialer(srv)
	d.Registry = nil
	queue := make(chan task, 1)
	h := &handler{dialer: d, addr: newsHost + ":119", group: group, queue: queue}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(testContext(t), http.MethodGet, "/summary", nil))
	if rec.Code != http.StatusBadGateway {
		t.Errorf("status %d, want %d", rec.Code, http.StatusBadGateway)
	}
	if len(queue) != 0 {
		t.Errorf("%d tasks enqueued, want none", len(queue))
	}
	wantSessions := [][]string{{"GROUP " + group}}
	if got := srv.Sessions(); !slices.EqualFunc(got, wantSessions, slices.Equal) {
		t.Errorf("server sessions %q, want %q", got, wantSessions)
	}
}

// The default run, against the demonstration server.
func TestDemo(t *testing.T) {
	var out strings.Builder
	if err := demo(testContext(t), "", group, &out); err != nil {
		t.Fatalf("demo: %v", err)
	}
	if !strings.Contains(out.String(), "Sockets on App Engine") {
		t.Errorf("demo output lacks the newest article:\n%s", out.String())
	}
}
