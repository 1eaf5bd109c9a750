package lab_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
)

// The handler serves each connection; the server closes it when the
// handler returns, and records it in accept order.
func TestServer(t *testing.T) {
	srv := lab.NewServer(t, func(_ context.Context, c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			io.WriteString(c, "re: "+line)
		}
	})
	if a := srv.AddrPort(); !a.Addr().IsLoopback() || srv.Addr() != a.String() {
		t.Fatalf("address %v (%s)", a, srv.Addr())
	}
	var locals []string
	for _, msg := range []string{"one\n", "two\n"} {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		locals = append(locals, c.LocalAddr().String())
		io.WriteString(c, msg)
		got, err := io.ReadAll(c) // to the end: the server closed it
		c.Close()
		if err != nil || string(got) != "re: "+msg {
			t.Errorf("read %q, %v; want %q", got, err, "re: "+msg)
		}
	}
	var accepted []string
	for _, a := range srv.Accepted() {
		accepted = append(accepted, a.String())
	}
	if !slices.Equal(accepted, locals) {
		t.Errorf("accepted %v, want %v", accepted, locals)
	}
}

// Close ends a handler blocked on its connection and one waiting on its
// context, and closes the connections.
func TestServerClose(t *testing.T) {
	var n atomic.Int32
	started := make(chan struct{})
	ended := make(chan error, 2)
	srv := lab.NewServer(t, func(ctx context.Context, c net.Conn) {
		first := n.Add(1) == 1
		started <- struct{}{}
		if first {
			_, err := c.Read(make([]byte, 1)) // until Close closes c
			ended <- err
			return
		}
		<-ctx.Done()
		ended <- ctx.Err()
	})
	var clients []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		<-started
	}
	srv.Close()
	srv.Close() // a second Close does nothing
	for range 2 {
		if err := <-ended; err == nil {
			t.Error("a handler's wait ended without an error")
		}
	}
	for i, c := range clients {
		// The server's close reaches the client as an end of stream (or a
		// reset), never as data.
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("client %d: read %d bytes, %v after Close; want the connection closed", i, n, err)
		}
	}
}
