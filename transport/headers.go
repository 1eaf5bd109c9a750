package transport

import (
	"errors"
	"time"
)

// The sockets backend's bounds on a response's headers, used when
// [SocketsConfig.ResponseHeaderTimeout] and [SocketsConfig.MaxResponseHeaderBytes] are
// zero.
//
// A service that fetches URLs for others talks to servers it does not
// choose, and some of them are hostile: one accepts the request and never
// answers, another answers with headers that never end. net/http's own
// defaults bound neither the first (no ResponseHeaderTimeout) nor the
// second well (10 MiB of headers, held in memory, per connection).
//
// DefaultResponseHeaderTimeout is 30 seconds: the dial timeout the backend
// already uses, several times what a slow but working server needs to
// start answering (a request's whole exchange on App Engine's URL Fetch
// had 5 seconds by default, 60 at most), and short enough that a server
// which never answers does not hold a connection and a caller for
// minutes. A request that needs longer, a long poll, sets a longer or a
// negative ResponseHeaderTimeout and bounds itself with its context.
//
// DefaultMaxResponseHeaderBytes is 1 MiB, net/http's server-side limit
// (http.DefaultMaxHeaderBytes): a tenth of net/http's client default,
// still far above what working servers send (nginx, in front of many of
// them, proxies a response only if its headers fit in 4 or 8 KiB by
// default), and small enough that many concurrent fetches cannot be made to hold gigabytes of
// headers.
const (
	DefaultResponseHeaderTimeout  = 30 * time.Second
	DefaultMaxResponseHeaderBytes = 1 << 20
)

// checkHeaderLimits refuses negative header sizes; a negative timeout is
// allowed and means no timeout.
func (cfg *Config) checkHeaderLimits() error {
	if cfg.Sockets.MaxResponseHeaderBytes < 0 {
		return errors.New("transport: negative MaxResponseHeaderBytes")
	}
	return nil
}

// responseHeaderTimeout is the http.Transport value for
// cfg.Sockets.ResponseHeaderTimeout: zero there is the default, negative is none
// (zero in http.Transport).
func (cfg *Config) responseHeaderTimeout() time.Duration {
	switch {
	case cfg.Sockets.ResponseHeaderTimeout == 0:
		return DefaultResponseHeaderTimeout
	case cfg.Sockets.ResponseHeaderTimeout < 0:
		return 0
	}
	return cfg.Sockets.ResponseHeaderTimeout
}

// maxResponseHeaderBytes is the http.Transport value for
// cfg.Sockets.MaxResponseHeaderBytes, after checkHeaderLimits.
func (cfg *Config) maxResponseHeaderBytes() int64 {
	if cfg.Sockets.MaxResponseHeaderBytes == 0 {
		return DefaultMaxResponseHeaderBytes
	}
	return cfg.Sockets.MaxResponseHeaderBytes
}
