package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
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
func dialer(srv *newsServer) (*socketapi.Dialer, *socketstest.Connector) {
	conn := &socketstest.Connector{Target: srv.Addr()}
	return &socketapi.Dialer{
		Dialer: sockets.Dialer{
			Resolver: socketstest.NewResolver(map[string][]string{newsHost: {publicIP}}),
			Connect:  conn.Connect,
		},
		Registry: new(socketapi.Registry),
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

	c, err := d.DialContext(ctx, "tcp", newsHost+":119")
	if err != nil {
		t.Fatal(err)
	}
	conn, ok := c.(*socketapi.Conn)
	if !ok {
		t.Fatalf("DialContext returned a %T, want a *socketapi.Conn", c)
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
	if _, err := conn.Write([]byte("QUIT\r\n")); !errors.Is(err, socketapi.ErrHandedOff) {
		t.Errorf("Write on the handed-off connection: %v, want socketapi.ErrHandedOff", err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, socketapi.ErrHandedOff) {
		t.Errorf("Read on the handed-off connection: %v, want socketapi.ErrHandedOff", err)
	}

	// Another application, even with the same Registry, cannot pick it up.
	other := &socketapi.Dialer{Registry: d.Registry, AppID: "another-app"}
	_, err = other.Attach(tk.Descriptor)
	var hoe *socketapi.Error
	if !errors.Is(err, socketapi.ErrWrongApp) || !errors.As(err, &hoe) {
		t.Fatalf("Attach by another application: %v, want a *socketapi.Error matching socketapi.ErrWrongApp", err)
	}
	if err := finish(ctx, other, tk, io.Discard); !errors.Is(err, socketapi.ErrWrongApp) {
		t.Errorf("finish by another application: %v, want socketapi.ErrWrongApp", err)
	}

	// The refusals left the socket parked for its own application.
	var out strings.Builder
	if err := finish(ctx, d, tk, &out); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if !strings.Contains(out.String(), "Third") {
		t.Errorf("task output %q does not list the articles", out.String())
	}
	if err := finish(ctx, d, tk, io.Discard); !errors.Is(err, socketapi.ErrStaleDescriptor) {
		t.Errorf("second finish with the same descriptor: %v, want socketapi.ErrStaleDescriptor", err)
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
	h := &handler{dialer: d, addr: newsHost + ":119", group: group, queue: memQueue{d, queue}}
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

// The default run, against the demonstration server, in one process and
// in two.
func TestDemo(t *testing.T) {
	for _, processes := range []bool{false, true} {
		t.Run("processes="+strconv.FormatBool(processes), func(t *testing.T) {
			var out strings.Builder
			if err := demo(testContext(t), "", group, processes, &out); err != nil {
				t.Fatalf("demo: %v", err)
			}
			if !strings.Contains(out.String(), "Sockets on App Engine") {
				t.Errorf("demo output lacks the newest article:\n%s", out.String())
			}
			if processes && !strings.Contains(out.String(), "worker process") {
				t.Errorf("demo output does not come from two processes:\n%s", out.String())
			}
		})
	}
}

// The web process of the tests is this test binary again. Run with -role
// web (by demo, with -processes), it is the command's own web process;
// with webEnv set (by TestTwoProcesses), it is a web process that dials
// the tests' news server on loopback.
//
// It dials the server's own address, which its policy allows, not
// newsHost through the tests' resolver and connect seam: the worker reads
// the socket's peer from the kernel, and a socket the seam connected to
// loopback for a public address would be refused as a lie
// (socketapi.ErrPeerMismatch; TestProcessQueuePeerMismatch).
const webEnv = "OUTBOUND_HANDOFF_WEB"

// webSpec is what the web process of TestTwoProcesses needs.
type webSpec struct {
	Server   string // the news server on loopback
	Registry string // the worker's registry socket
}

func TestMain(m *testing.M) {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "-role=web":
		main()
		os.Exit(0)
	case os.Getenv(webEnv) != "":
		os.Exit(webProcess(os.Getenv(webEnv)))
	}
	os.Exit(m.Run())
}

func webProcess(spec string) int {
	var ws webSpec
	if err := json.Unmarshal([]byte(spec), &ws); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// The web process has no Registry of its own: the socket goes to the
	// worker's.
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, AppID: appID}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := web(ctx, d, ws.Server, group, ws.Registry, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startWeb returns a function that starts the tests' web process against
// srv.
func startWeb(t *testing.T, srv *newsServer) func(ctx context.Context, registry string) *exec.Cmd {
	return func(ctx context.Context, registry string) *exec.Cmd {
		spec, err := json.Marshal(webSpec{Server: srv.Addr(), Registry: registry})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, os.Args[0])
		cmd.Env = append(os.Environ(), webEnv+"="+string(spec))
		return cmd
	}
}

// TestTwoProcesses: the web process opens the connection and exits; the
// worker process finishes the conversation on that connection.
func TestTwoProcesses(t *testing.T) {
	srv := startServer(t, testArticles)
	d, connector := dialer(srv)
	d.Policy = loopbackPolicy() // the peer the worker checks is the server's
	var out strings.Builder
	if err := twoProcesses(testContext(t), d, startWeb(t, srv), &out); err != nil {
		t.Fatalf("twoProcesses: %v", err)
	}
	want := regexp.MustCompile(`^web process (\d+) \(exited\), request handler replied:
example.golang: 3 articles, numbered 1 to 3
the rest of the conversation was handed to a background task
worker process (\d+), on the same connection:
     1  a@example.com                 First
     2  b@example.com                 Second
     3  c@example.com                 Third
$`)
	m := want.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output:\n%s\nwant it to match:\n%s", out.String(), want)
	}
	if m[1] == m[2] || m[2] != strconv.Itoa(os.Getpid()) {
		t.Errorf("web process %s, worker process %s: want two processes, the worker this one (%d)", m[1], m[2], os.Getpid())
	}
	// One connection carried the whole conversation: the web process's
	// GROUP, then the worker's OVER and QUIT. This process never dialed.
	wantSessions := [][]string{{"GROUP " + group, "OVER 1-3", "QUIT"}}
	if got := srv.Sessions(); !slices.EqualFunc(got, wantSessions, slices.Equal) {
		t.Errorf("server sessions %q, want %q", got, wantSessions)
	}
	if a := connector.Attempts(); len(a) != 0 {
		t.Errorf("the worker connected to %v, want nowhere", a)
	}
	if n := d.Registry.Len(); n != 0 {
		t.Errorf("%d sockets still parked, want none", n)
	}
}

// TestProcessQueuePeerMismatch: a connection whose socket does not reach
// the address its policy checked cannot move to the worker: here one the
// tests' connect seam sent to loopback for a public address, as an egress
// proxy's socket reaches the proxy. The handler keeps it, to close.
func TestProcessQueuePeerMismatch(t *testing.T) {
	srv := startServer(t, testArticles)
	d, _ := dialer(srv)
	ctx := testContext(t)
	sock := filepath.Join(t.TempDir(), "registry.sock")
	if err := d.Registry.Listen(sock); err != nil {
		t.Fatal(err)
	}
	defer d.Registry.Close()
	c, err := d.DialContext(ctx, "tcp", newsHost+":119")
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*socketapi.Conn)
	defer conn.Close()
	tk, _, err := openGroup(ctx, conn, group)
	if err != nil {
		t.Fatal(err)
	}
	var tasks strings.Builder
	err = processQueue{registry: sock, w: &tasks}.enqueue(ctx, conn, tk)
	if !errors.Is(err, socketapi.ErrPeerMismatch) {
		t.Fatalf("enqueue of a connection the seam sent elsewhere: %v, want socketapi.ErrPeerMismatch", err)
	}
	if tasks.Len() != 0 || d.Registry.Len() != 0 {
		t.Errorf("task %q written, %d sockets received; want none", tasks.String(), d.Registry.Len())
	}
	// The connection is still the handler's.
	if err := conn.KeepAlive(); err != nil {
		t.Errorf("the connection after the refusal: %v", err)
	}
}

// TestTwoProcessesWrongApp: a worker of another application cannot pick
// the socket up.
func TestTwoProcessesWrongApp(t *testing.T) {
	srv := startServer(t, testArticles)
	d, _ := dialer(srv)
	d.AppID = "another-app"
	err := twoProcesses(testContext(t), d, startWeb(t, srv), io.Discard)
	if he, ok := errors.AsType[*socketapi.Error](err); !ok || !errors.Is(err, socketapi.ErrWrongApp) || he.App != appID {
		t.Fatalf("twoProcesses for another application: %v, want a *socketapi.Error for %q matching socketapi.ErrWrongApp", err, appID)
	}
	// The socket stayed parked for its own application until the worker
	// drained its Registry on its way out, which closed it.
	if n := d.Registry.Len(); n != 0 {
		t.Errorf("%d sockets parked, want the Registry drained", n)
	}
	select {
	case <-srv.ended:
	case <-time.After(time.Minute):
		t.Fatal("the connection is still open a minute after the worker drained its Registry")
	}
	wantSessions := [][]string{{"GROUP " + group}}
	if got := srv.Sessions(); !slices.EqualFunc(got, wantSessions, slices.Equal) {
		t.Errorf("server sessions %q, want %q", got, wantSessions)
	}
}
