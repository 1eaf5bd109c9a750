package socketstest_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"

	"github.com/outbound-go/outbound/sockets/socketstest"
)

// A server certificate and the pool a client trusts it with, over an
// in-memory connection.
func ExampleNewCert() {
	cert, roots := socketstest.NewCert("www.example.com")
	client, server := net.Pipe()
	go func() {
		tc := tls.Server(server, &tls.Config{Certificates: []tls.Certificate{cert}})
		io.WriteString(tc, "hello")
		tc.Close()
	}()
	tc := tls.Client(client, &tls.Config{RootCAs: roots, ServerName: "www.example.com"})
	defer tc.Close()
	b, err := io.ReadAll(tc)
	fmt.Println(string(b), err, tc.ConnectionState().PeerCertificates[0].DNSNames)
	// Output: hello <nil> [www.example.com]
}
