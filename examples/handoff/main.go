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
// A descriptor works only in the process that made it, through a Dialer
// sharing the same sockets.Registry, and only for the same application
// (sockets.Dialer.AppID): another application's Attach is refused with
// sockets.ErrWrongApp.
package main

import (
	"context"
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
	"os/signal"
	"strings"
	"time"

	"github.com/outbound-go/outbound/sockets"
)

// appID is the identity of this application; descriptors carry it.
const appID = "handoff-demo"

func main() {
	log.SetFlags(0)
	addr := flag.String("addr", "", "news server `host:port` (default: a demonstration server on loopback)")
	group := flag.String("group", "example.golang", "newsgroup to summarize")
	timeout := flag.Duration("timeout", time.Minute, "time limit for the whole run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	err := demo(ctx, *addr, *group, os.Stdout)
	cancel()
	stop()
	if err != nil {
		log.Fatal("handoff: ", err)
	}
}

// demo runs run against addr or, when addr is empty, against a news server
// on loopback holding a few articles.
func demo(ctx context.Context, addr, group string, out io.Writer) error {
	d := &sockets.Dialer{Registry: new(sockets.Registry), AppID: appID}
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
		// Loopback is never public: the policy refuses it unless told.
		d.Policy = sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))
		addr = srv.Addr()
	}
	return run(ctx, d, addr, group, out)
}

// task is the payload of a background task: the descriptor of a live
// connection in the middle of a conversation, and what is needed to finish
// it. On App Engine it would travel in a push task's body; a descriptor is
// a plain string.
type task struct {
	Descriptor string
	Group      string
	Low, High  int // the articles to list; none when Low > High
}

// run serves the request handler over HTTP on loopback, sends it one
// request, runs the background task it enqueues, and writes both sides'
// results to out. d must have a Registry.
func run(ctx context.Context, d *sockets.Dialer, addr, group string, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the task runner if no task comes

	queue := make(chan task, 16)
	web := httptest.NewServer(&handler{dialer: d, addr: addr, group: group, queue: queue})
	defer web.Close()

	// The task runner: it takes one task from the queue and runs it.
	var transcript strings.Builder
	done := make(chan error, 1)
	go func() {
		select {
		case t := <-queue:
			done <- finish(ctx, d, t, &transcript)
		case <-ctx.Done():
			done <- ctx.Err()
		}
	}()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, web.URL+"/summary", nil)
	if err != nil {
		return err
	}
	resp, err := web.Client().Do(req)
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

	if err := <-done; err != nil {
		return fmt.Errorf("background task: %w", err)
	}
	fmt.Fprintf(out, "background task, on the same connection:\n%s", transcript.String())
	return nil
}

// handler is the request handler: it opens the connection, reads the
// group's summary, and hands the socket off to the queue.
type handler struct {
	dialer *sockets.Dialer
	addr   string
	group  string
	queue  chan<- task
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := h.dialer.DialConn(r.Context(), "tcp", h.addr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	t, summary, err := openGroup(r.Context(), conn, h.group)
	if err == nil {
		// From here on conn is retired: every use of it fails with
		// sockets.ErrHandedOff, and the socket belongs to whoever attaches
		// the descriptor.
		t.Descriptor, err = conn.Detach()
	}
	if err != nil {
		conn.Close()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	select {
	case h.queue <- t:
		fmt.Fprintf(w, "%s\nthe rest of the conversation was handed to a background task\n", summary)
	default:
		// No room for the task: pick the socket up again to close it.
		if c, err := h.dialer.Attach(t.Descriptor); err == nil {
			c.Close()
		}
		http.Error(w, "task queue full", http.StatusServiceUnavailable)
	}
}

// openGroup reads the server's greeting on a new connection and selects
// group. It returns the task that lists the newest articles (at most ten),
// and the group's summary.
func openGroup(ctx context.Context, conn *sockets.Conn, group string) (task, string, error) {
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
func finish(ctx context.Context, d *sockets.Dialer, t task, out io.Writer) error {
	conn, err := d.Attach(t.Descriptor) // a *sockets.HandOffError on failure
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
