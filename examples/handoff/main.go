// Command handoff shows App Engine's socket hand-off in Go: a request
// handler opens a connection to a news server, reads the summary of a
// newsgroup, and hands the live socket to a background task as an opaque
// descriptor; the task picks the socket up by that descriptor and finishes
// the conversation on the same connection. The handler answers at once, and
// the slow part runs after it.
//
// With no flags it talks to a small news server it starts on loopback, which
// the policy allows only because the demonstration says so explicitly:
//
//	go run ./examples/handoff
//
// Against a real NNTP server (RFC 3977: GROUP, OVER, QUIT):
//
//	go run ./examples/handoff -addr news.example.net:119 -group comp.lang.go
//
// By default the handler and the task run in one process, and the
// descriptor goes from one to the other through a socketapi.Registry they
// share. With -processes they run in two, as a web process and a worker
// process would:
//
//	go run ./examples/handoff -processes
//
// This process is then the worker: it serves its Registry on a Unix socket
// in a new private directory (socketapi.Registry.Listen) and starts the web
// process, itself again with -role web. The web process's request handler
// opens the connection, reads the summary, and moves the live socket to
// the worker through the kernel (socketapi.Conn.DetachTo); the descriptor it
// gets back is the task's payload, which it writes on its standard output,
// the task queue; then it exits. The worker reads the task, attaches the
// socket (socketapi.Dialer.Attach) and finishes the conversation on the same
// connection, which the web process no longer holds. When it is done, the
// worker drains its Registry (socketapi.Registry.Close): it stops serving,
// and a socket nobody attached is closed, not left to the idle timeout. A
// TLS connection cannot move between processes (socketapi.ErrTLSNotMovable):
// its session lives in the memory of the process that made it. Nor can a
// connection made through an egress proxy (socketapi.ErrPeerMismatch): the
// worker reads the socket's peer from the kernel and accepts it only if it
// is the address the web process's policy checked, and a proxied socket's
// peer is the proxy.
//
// A descriptor works only through the Registry that made it, and only for
// the same application (socketapi.Dialer.AppID): another application's
// Attach is refused with socketapi.ErrWrongApp. Both processes must run as
// the same user. The worker checks the peer against its own policy when it
// attaches; the host name the connection was dialed by is the web
// process's word.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/textproto"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// appID is the identity of this application; descriptors carry it.
const appID = "handoff-demo"

func main() {
	log.SetFlags(0)
	addr := flag.String("addr", "", "news server `host:port` (default: a demonstration server on loopback)")
	group := flag.String("group", "example.golang", "newsgroup to summarize")
	timeout := flag.Duration("timeout", time.Minute, "time limit for the whole run")
	processes := flag.Bool("processes", false, "run the handler and the task in two processes: a web process and a worker process")
	role := flag.String("role", "", "`web`: the web process that -processes starts (with -registry)")
	registry := flag.String("registry", "", "the worker's registry `socket`, for -role web")
	loopback := flag.Bool("loopback", false, "allow 127.0.0.1, where the demonstration server is, for -role web")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	var err error
	switch {
	case *role == "web":
		d := &socketapi.Dialer{AppID: appID}
		if *loopback {
			d.Policy = loopbackPolicy()
		}
		// Standard output is the task queue; what the web process has to
		// say goes to standard error.
		err = web(ctx, d, *addr, *group, *registry, os.Stdout, os.Stderr)
	case *role != "":
		err = fmt.Errorf("unknown role %q", *role)
	default:
		err = demo(ctx, *addr, *group, *processes, os.Stdout)
	}
	cancel()
	stop()
	if err != nil {
		log.Fatal("handoff: ", err)
	}
}

// loopbackPolicy is the default policy and 127.0.0.1: loopback is never
// public, so the policy refuses it unless told.
func loopbackPolicy() *sockets.Policy {
	return sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))
}

// demo runs run, or with processes twoProcesses, against addr or, when
// addr is empty, against a news server on loopback holding a few articles.
func demo(ctx context.Context, addr, group string, processes bool, out io.Writer) error {
	d := &socketapi.Dialer{Registry: new(socketapi.Registry), AppID: appID}
	var loopback bool
	if addr == "" {
		srv, err := startNewsServer(group, []article{
			{"Go 1.26 is released", "gopher@example.com", "Tue, 10 Feb 2026 18:00:00 +0000"},
			{"Re: Go 1.26 is released", "reader@example.net", "Wed, 11 Feb 2026 09:30:00 +0000"},
			{"Sockets on App Engine", "dev@example.org", "Mon, 23 Nov 2026 12:00:00 +0000"},
		})
		if err != nil {
			return err
		}
		defer srv.Close()
		d.Policy = loopbackPolicy()
		addr, loopback = srv.Addr(), true
	}
	if !processes {
		return run(ctx, d, addr, group, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	startWeb := func(ctx context.Context, registry string) *exec.Cmd {
		args := []string{"-role=web", "-registry=" + registry, "-addr=" + addr, "-group=" + group}
		if loopback {
			args = append(args, "-loopback")
		}
		return exec.CommandContext(ctx, self, args...)
	}
	return twoProcesses(ctx, d, startWeb, out)
}

// task is the payload of a background task: the descriptor of a live
// connection in the middle of a conversation, and what is needed to finish
// it. On App Engine it would travel in a push task's body; a descriptor is
// a plain string, and a task is JSON between processes.
type task struct {
	Descriptor string
	Group      string
	Low, High  int // the articles to list; none when Low > High
}

// queue takes a task and the connection it continues: it hands the socket
// off, sets the task's Descriptor, and sends the task to whoever runs it.
// On failure the connection is the caller's, to close.
type queue interface {
	enqueue(ctx context.Context, conn *socketapi.Conn, t task) error
}

// errQueueFull is the error of a queue with no room for a task.
var errQueueFull = errors.New("task queue full")

// memQueue is the queue of a task runner in the same process: the socket
// is parked in the process's Registry.
type memQueue struct {
	dialer *socketapi.Dialer // for its Registry
	tasks  chan<- task
}

func (q memQueue) enqueue(_ context.Context, conn *socketapi.Conn, t task) error {
	var err error
	// From here on conn is retired: every use of it fails with
	// socketapi.ErrHandedOff, and the socket belongs to whoever attaches the
	// descriptor.
	if t.Descriptor, err = conn.Detach(); err != nil {
		return err
	}
	select {
	case q.tasks <- t:
		return nil
	default:
		// No room for the task: take the socket back, for the caller to
		// close.
		if c, err := q.dialer.Attach(t.Descriptor); err == nil {
			c.Close()
		}
		return errQueueFull
	}
}

// processQueue is the queue of a worker process: the socket moves to the
// worker's Registry, served on the Unix socket registry, and the task goes
// to w as a line of JSON.
type processQueue struct {
	registry string
	w        io.Writer
}

func (q processQueue) enqueue(ctx context.Context, conn *socketapi.Conn, t task) error {
	var err error
	// When DetachTo returns, the socket has left this process: the worker
	// holds it, under the descriptor, and this process may exit.
	if t.Descriptor, err = conn.DetachTo(ctx, q.registry); err != nil {
		return err
	}
	return json.NewEncoder(q.w).Encode(t)
}

// run serves the request handler over HTTP on loopback, sends it one
// request, runs the background task it enqueues, and writes both sides'
// results to out. d must have a Registry.
func run(ctx context.Context, d *socketapi.Dialer, addr, group string, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the task runner if no task comes

	tasks := make(chan task, 16)
	h := &handler{dialer: d, addr: addr, group: group, queue: memQueue{d, tasks}}

	// The task runner: it takes one task from the queue and runs it.
	var transcript strings.Builder
	done := make(chan error, 1)
	go func() {
		select {
		case t := <-tasks:
			done <- finish(ctx, d, t, &transcript)
		case <-ctx.Done():
			done <- ctx.Err()
		}
	}()

	if err := request(ctx, h, out); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return fmt.Errorf("background task: %w", err)
	}
	fmt.Fprintf(out, "background task, on the same connection:\n%s", transcript.String())
	return nil
}

// request serves h over HTTP on loopback, sends it one request, and writes
// its reply to out.
func request(ctx context.Context, h *handler, out io.Writer) error {
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/summary", nil)
	if err != nil {
		return err
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("request handler: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(out, "request handler replied:\n%s", body)
	return nil
}

// web is the web process: it serves the request handler over HTTP on
// loopback and sends it one request, as run does, but the handler moves
// each socket to the worker's Registry, served on the Unix socket
// registry, and writes the task to tasks; what the process has to say goes
// to out.
func web(ctx context.Context, d *socketapi.Dialer, addr, group, registry string, tasks, out io.Writer) error {
	if registry == "" {
		return errors.New("the web process needs -registry")
	}
	h := &handler{dialer: d, addr: addr, group: group, queue: processQueue{registry, tasks}}
	return request(ctx, h, out)
}

// twoProcesses is the worker process: it serves d's Registry on a Unix
// socket in a new private directory, runs the web process that startWeb
// returns (given the socket's path), takes the task the web process writes
// on its standard output, waits for the web process to exit, and then runs
// the task: on the same connection, which only this process holds now.
// When it returns, d's Registry is closed: drained of every socket still
// parked in it.
func twoProcesses(ctx context.Context, d *socketapi.Dialer, startWeb func(ctx context.Context, registry string) *exec.Cmd, out io.Writer) error {
	dir, err := os.MkdirTemp("", "handoff-") // mode 0700: this user's only
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "registry.sock")
	if err := d.Registry.Listen(sock); err != nil {
		return err
	}
	defer d.Registry.Close()

	cmd := startWeb(ctx, sock)
	var said bytes.Buffer
	cmd.Stderr = &said
	queue, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var t task
	decodeErr := json.NewDecoder(queue).Decode(&t)
	io.Copy(io.Discard, queue)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("web process: %w: %s", err, strings.TrimSpace(said.String()))
	}
	if decodeErr != nil {
		return fmt.Errorf("task from the web process: %w", decodeErr)
	}
	fmt.Fprintf(out, "web process %d (exited), %s", cmd.ProcessState.Pid(), said.String())

	var transcript strings.Builder
	if err := finish(ctx, d, t, &transcript); err != nil {
		return fmt.Errorf("worker process: %w", err)
	}
	fmt.Fprintf(out, "worker process %d, on the same connection:\n%s", os.Getpid(), transcript.String())
	return nil
}

// handler is the request handler: it opens the connection, reads the
// group's summary, and hands the socket off to the queue.
type handler struct {
	dialer *socketapi.Dialer
	addr   string
	group  string
	queue  queue
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := h.dialer.DialContext(r.Context(), "tcp", h.addr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	conn := c.(*socketapi.Conn) // what a socketapi.Dialer always returns
	t, summary, err := openGroup(r.Context(), conn, h.group)
	if err == nil {
		err = h.queue.enqueue(r.Context(), conn, t)
	}
	switch {
	case err == nil:
		fmt.Fprintf(w, "%s\nthe rest of the conversation was handed to a background task\n", summary)
	case errors.Is(err, errQueueFull):
		conn.Close()
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		conn.Close()
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
}

// openGroup reads the server's greeting on a new connection and selects
// group. It returns the task that lists the newest articles (at most ten),
// and the group's summary.
func openGroup(ctx context.Context, conn *socketapi.Conn, group string) (task, string, error) {
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	tc := textproto.NewConn(conn)
	if _, _, err := tc.ReadCodeLine(2); err != nil {
		return task{}, "", fmt.Errorf("greeting: %w", err)
	}
	if err := tc.PrintfLine("GROUP %s", group); err != nil {
		return task{}, "", err
	}
	_, msg, err := tc.ReadCodeLine(211)
	if err != nil {
		return task{}, "", fmt.Errorf("GROUP %s: %w", group, err)
	}
	var count, low, high int
	if _, err := fmt.Sscanf(msg, "%d %d %d", &count, &low, &high); err != nil {
		return task{}, "", fmt.Errorf("GROUP %s: malformed reply %q", group, msg)
	}
	// Bytes read ahead into tc's buffer would not travel with the socket.
	if tc.R.Buffered() > 0 {
		return task{}, "", errors.New("the server sent more than its reply")
	}
	t := task{Group: group, Low: max(low, high-9), High: high}
	if count == 0 {
		t.Low, t.High = 1, 0
	}
	return t, fmt.Sprintf("%s: %d articles, numbered %d to %d", group, count, low, high), nil
}

// finish is the background task: it picks the connection up by its
// descriptor, lists the articles of t to out, and ends the conversation.
// The descriptor must come from d's Registry and d's application.
func finish(ctx context.Context, d *socketapi.Dialer, t task, out io.Writer) error {
	conn, err := d.Attach(t.Descriptor) // a *socketapi.Error on failure
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	tc := textproto.NewConn(conn)
	if t.Low <= t.High {
		if err := tc.PrintfLine("OVER %d-%d", t.Low, t.High); err != nil {
			return err
		}
		if _, _, err := tc.ReadCodeLine(224); err != nil {
			return fmt.Errorf("OVER: %w", err)
		}
		lines, err := tc.ReadDotLines()
		if err != nil {
			return fmt.Errorf("OVER: %w", err)
		}
		for _, line := range lines {
			// number, subject, from, date, ... (RFC 3977, section 8.3)
			f := strings.Split(line, "\t")
			if len(f) < 4 {
				return fmt.Errorf("OVER: malformed line %q", line)
			}
			fmt.Fprintf(out, "%6s  %-28s  %s\n", f[0], f[2], f[1])
		}
	}
	if err := tc.PrintfLine("QUIT"); err != nil {
		return err
	}
	_, _, err = tc.ReadCodeLine(205)
	return err
}
