package transport_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/transport"
)

// After Install of the sockets backend, http.DefaultTransport is an
// *http.Transport, so code that clones it works, and its clones keep the
// checked dialer: a private destination is refused before any connection.
func ExampleInstall_clone() {
	rt, err := transport.New(transport.Config{
		Backend: transport.Sockets,
		Dialer:  sockets.Dialer{Resolver: socketstest.NewResolver(map[string][]string{"intranet.example": {"10.0.0.1"}})},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	restore := transport.Install(rt)
	defer restore()

	// What many third-party packages do at start-up.
	clone := http.DefaultTransport.(*http.Transport).Clone()
	defer clone.CloseIdleConnections()

	_, err = (&http.Client{Transport: clone}).Get("http://intranet.example/")
	var denied *sockets.DeniedError
	if errors.As(err, &denied) {
		fmt.Println("refused:", denied.ErrorType())
		fmt.Println("for the caller:", denied.Redacted())
	}
	// Output:
	// refused: private
	// for the caller: sockets: tcp to "intranet.example" refused: private (RFC 1918)
}
