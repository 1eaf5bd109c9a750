package transport

import (
	"net/http"
	"time"

	"github.com/outbound-go/outbound/sockets"
)

// The bounds of [SafeClient].
const (
	safeDialTimeout            = 5 * time.Second  // lookup and connect
	safeResponseHeaderTimeout  = 10 * time.Second // a server that never answers
	safeMaxResponseHeaderBytes = 64 << 10         // endless headers
	safeClientTimeout          = 30 * time.Second // the whole exchange, body included
)

// SafeClient returns an http.Client for fetching URLs that others choose
// (webhooks, link previews, importers, feed readers): the sockets backend,
// whose every connection, every resolved address and every redirect hop
// is checked at connect time, with a bound on each step. d gives the
// dialer; nil means the zero Dialer. From it, a nil Policy means
// sockets.DefaultPolicy().DenySelf(): public destinations only, never
// this machine's own interface addresses (an admin or debug listener
// bound to 0.0.0.0 on a public address), and Google's own services
// refused, as App Engine's Sockets API did (set a policy of your own,
// such as sockets.PublicPolicy().DenySelf(), to reach them). A zero
// Timeout means 5 seconds
// for the lookup and the connect; its Resolver and Connect seam (tests:
// see package socketstest) are used as given. The response headers must
// arrive within 10 seconds and fit in 64 KiB, and the client's Timeout
// bounds the whole exchange, body included, to 30 seconds. Change the
// returned client's fields, or build a [Config] with [New], for other
// bounds. d is copied, never changed.
func SafeClient(d *sockets.Dialer) (*http.Client, error) {
	cfg := Config{
		Backend: Sockets,
		Sockets: SocketsConfig{
			ResponseHeaderTimeout:  safeResponseHeaderTimeout,
			MaxResponseHeaderBytes: safeMaxResponseHeaderBytes,
		},
	}
	if d != nil {
		cfg.Dialer = *d
	}
	if cfg.Dialer.Policy == nil {
		cfg.Dialer.Policy = sockets.DefaultPolicy().DenySelf()
	}
	if cfg.Dialer.Timeout == 0 {
		cfg.Dialer.Timeout = safeDialTimeout
	}
	rt, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: rt, Timeout: safeClientTimeout}, nil
}
