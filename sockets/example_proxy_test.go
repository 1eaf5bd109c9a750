package sockets_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/outbound-go/outbound/sockets"
)

// A Dialer with a proxy checks the destination itself, before it connects
// to the proxy: a refused destination never reaches the proxy, and the
// refusal is the policy's, not the proxy's.
func ExampleDialer_proxy() {
	proxy, err := sockets.ParseProxy("http://user:secret@proxy.internal:3128")
	if err != nil {
		fmt.Println(err)
		return
	}
	d := &sockets.Dialer{Proxy: proxy}

	_, err = d.DialContext(context.Background(), "tcp", "10.0.0.1:443")
	fmt.Println("10.0.0.1:", errors.Is(err, sockets.ErrDenied), errors.Is(err, sockets.ErrProxy))

	// CONNECT carries TCP only.
	_, err = d.DialContext(context.Background(), "udp", "203.0.113.7:53")
	var de *sockets.DeniedError
	fmt.Println("udp:", errors.As(err, &de) && de.Rule == sockets.RuleProxyNetwork)
	// Output:
	// 10.0.0.1: true false
	// udp: true
}

// A proxy URL that cannot be used is refused with a ProxyError that does
// not repeat its credentials.
func ExampleParseProxy() {
	_, err := sockets.ParseProxy("socks5://user:secret@proxy.internal:1080")
	var pe *sockets.ProxyError
	if errors.As(err, &pe) {
		fmt.Println(pe.Kind, pe.ErrorType())
	}
	fmt.Println(err)
	// Output:
	// invalid proxy url proxy_invalid
	// sockets: proxy: invalid proxy url: scheme "socks5" is not http or https
}
