//go:build linux

package socketapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// A worker process serves its Registry on a Unix socket; a web process
// moves a connection there and passes the descriptor on, in a task's
// payload, say. Here both sides run in one process, over the same kernel
// path that two processes use.
func ExampleConn_DetachTo() {
	addr, stop := exampleEcho()
	defer stop()
	loopback := sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))
	ctx := context.Background()

	// The worker: a private directory, and its Registry served in it.
	dir, err := os.MkdirTemp("", "worker-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	registry := &socketapi.Registry{}
	path := filepath.Join(dir, "registry.sock")
	if err := registry.Listen(path); err != nil {
		panic(err)
	}
	defer registry.Close()

	// The web process: its Dialer needs no Registry.
	web := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopback}, AppID: "mail-app"}
	conn, err := dial(web, ctx, "tcp", addr)
	if err != nil {
		panic(err)
	}
	descriptor, err := conn.DetachTo(ctx, path)
	if err != nil {
		panic(err)
	}
	// The web process may exit now: the socket is the worker's.
	_, err = conn.Write([]byte("hello"))
	fmt.Println("web process's handle:", errors.Is(err, socketapi.ErrHandedOff))

	// The worker, given the descriptor, may first see how long the socket
	// may wait: its idle limit, 10 minutes by default, less the time it
	// has been unused.
	left, err := registry.IdleLeft(descriptor)
	if err != nil {
		panic(err)
	}
	fmt.Println("more than 9 minutes left:", left > 9*time.Minute)
	worker := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopback}, Registry: registry, AppID: "mail-app"}
	taken, err := worker.Attach(descriptor)
	if err != nil {
		panic(err)
	}
	defer taken.Close()
	io.WriteString(taken, "ping")
	reply := make([]byte, 4)
	io.ReadFull(taken, reply)
	fmt.Println("echo:", string(reply))

	_, err = worker.Attach(descriptor)
	fmt.Println(errors.Is(err, socketapi.ErrStaleDescriptor))
	// Output:
	// web process's handle: true
	// more than 9 minutes left: true
	// echo: ping
	// true
}
