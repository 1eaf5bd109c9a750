package socketapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// exampleEcho starts a TCP echo server on loopback for the examples and
// returns its address and a function that stops it.
func exampleEcho() (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); <-done }
}

// A Dialer checks every connection against its embedded sockets.Dialer's
// policy and returns a *Conn, which carries App Engine's socket features.
func ExampleDialer() {
	addr, stop := exampleEcho()
	defer stop()
	d := &socketapi.Dialer{
		// The policy is widened explicitly to reach the loopback server.
		Dialer: sockets.Dialer{Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))},
	}
	nc, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		panic(err)
	}
	conn := nc.(*socketapi.Conn)
	defer conn.Close()
	io.WriteString(conn, "hello")
	io.ReadFull(conn, make([]byte, 5))
	fmt.Printf("%+v\n", conn.Usage())

	_, err = d.DialContext(context.Background(), "tcp", "10.0.0.1:25")
	fmt.Println("refused:", errors.Is(err, sockets.ErrDenied))
	// Output:
	// {Sent:5 Received:5}
	// refused: true
}

// A connection opened while serving one request is handed off as a
// descriptor (in a task payload, say) and picked up by the task's handler.
func ExampleConn_Detach() {
	addr, stop := exampleEcho()
	defer stop()
	loopback := sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))
	registry := &socketapi.Registry{} // shared by the whole process

	frontend := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopback}, Registry: registry, AppID: "mail-app"}
	conn, err := dial(frontend, context.Background(), "tcp", addr)
	if err != nil {
		panic(err)
	}
	descriptor, err := conn.Detach()
	if err != nil {
		panic(err)
	}
	_, err = conn.Write([]byte("hello"))
	fmt.Println("old handle:", errors.Is(err, socketapi.ErrHandedOff))

	// Another application cannot pick it up.
	other := &socketapi.Dialer{Registry: registry, AppID: "other-app"}
	_, err = other.Attach(descriptor)
	fmt.Println(err)

	// The same application can, once.
	worker := &socketapi.Dialer{Registry: registry, AppID: "mail-app"}
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
	fmt.Println(err)
	// Output:
	// old handle: true
	// socketapi: attach: socket descriptor belongs to another application (descriptor for "mail-app", attaching as "other-app")
	// echo: ping
	// socketapi: attach: stale socket descriptor
}

// An unconnected UDP socket checks every datagram's destination. Google
// Public DNS is allowed; a private resolver is not, and nothing is sent to
// it. (RoutePacket sends the allowed query to a stand-in server on
// loopback, so the example sends nothing off the machine.)
func ExampleDialer_ListenPacket() {
	standIn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		panic(err)
	}
	defer standIn.Close()
	go func() {
		buf := make([]byte, 512)
		n, from, err := standIn.ReadFromUDPAddrPort(buf)
		if err == nil {
			standIn.WriteToUDPAddrPort(append([]byte("answer to "), buf[:n]...), from)
		}
	}()

	meter := &socketapi.Meter{}
	d := &socketapi.Dialer{
		Meter: meter,
		RoutePacket: func(netip.AddrPort) netip.AddrPort {
			return standIn.LocalAddr().(*net.UDPAddr).AddrPort()
		},
	}
	pc, err := d.ListenPacket(context.Background(), "udp", "")
	if err != nil {
		panic(err)
	}
	defer pc.Close()

	google := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("8.8.8.8:53"))
	_, err = pc.WriteTo([]byte("query"), google)
	fmt.Println("8.8.8.8:53:", err)
	buf := make([]byte, 512)
	n, _, err := pc.ReadFrom(buf)
	fmt.Println("reply:", string(buf[:n]), err)

	private := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.0.0.1:53"))
	_, err = pc.WriteTo([]byte("query"), private)
	fmt.Println("10.0.0.1:53:", err)
	fmt.Println("denied:", errors.Is(err, sockets.ErrDenied))
	fmt.Printf("bytes sent to 8.8.8.8: %d\n", meter.Host("8.8.8.8").Sent)
	// Output:
	// 8.8.8.8:53: <nil>
	// reply: answer to query <nil>
	// 10.0.0.1:53: sockets: udp to 10.0.0.1:53 refused: private (RFC 1918)
	// denied: true
	// bytes sent to 8.8.8.8: 5
}

// A Meter totals the bytes of every connection per destination host. Its
// Snapshot encodes as JSON, so that an application that serves expvar
// publishes it with
// expvar.Publish("sockets", expvar.Func(func() any { return meter.Snapshot() })).
func ExampleMeter() {
	addr, stop := exampleEcho()
	defer stop()
	meter := &socketapi.Meter{
		OnClose: func(host string, u socketapi.Usage) {
			fmt.Printf("closed: %s sent %d, received %d\n", host, u.Sent, u.Received)
		},
	}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))}, Meter: meter}
	conn, err := dial(d, context.Background(), "tcp", addr)
	if err != nil {
		panic(err)
	}
	io.WriteString(conn, "twelve bytes")
	io.ReadFull(conn, make([]byte, 12))
	fmt.Printf("connection: %+v\n", conn.Usage())
	conn.Close()
	totals, _ := json.Marshal(meter.Snapshot())
	fmt.Println(string(totals))
	// Output:
	// connection: {Sent:12 Received:12}
	// closed: 127.0.0.1 sent 12, received 12
	// {"127.0.0.1":{"sent":12,"received":12}}
}

// Reverse lookups are not implemented, as on App Engine.
func ExampleDialer_LookupAddr() {
	d := &socketapi.Dialer{}
	_, err := d.LookupAddr(context.Background(), "8.8.8.8")
	fmt.Println(err)
	fmt.Println(errors.Is(err, socketapi.ErrNotImplemented))
	// Output:
	// socketapi: reverse lookup of "8.8.8.8": not implemented
	// true
}
