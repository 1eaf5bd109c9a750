package transport

import (
	"errors"
	"time"
)

// The sockets backend's bounds on a response's headers.
//
// A service that fetches URLs for others talks to servers it does not
// choose, and some of them are hostile: one accepts the request and never
// answers, another answers with headers that never end.
//
// The size bound costs nothing per request, so it is on by default:
// defaultMaxResponseHeaderBytes is 1 MiB, net/http's server-side limit
// (http.DefaultMaxHeaderBytes), a tenth of net/http's client default,
// still far above what working servers send (nginx, in front of many of
// them, proxies a response only if its headers fit in 4 or 8 KiB by
// default), and small enough that many concurrent fetches cannot be made
// to hold gigabytes of headers.
//
// The time bound is off by default, as in net/http and in App Engine's
// httplib over sockets: http.Transport's ResponseHeaderTimeout starts a
// timer on every request, which costs every keep-alive request a few
// allocations and a few percent of its time, and a deployment that moves
// from App Engine expects none. A request is still bounded by its
// context. [SafeClient], the constructor for fetching URLs for others,
// sets 10 seconds; [SocketsConfig.ResponseHeaderTimeout] sets any other.
const defaultMaxResponseHeaderBytes = 1 << 20

// checkHeaderLimits refuses negative header sizes; a negative timeout is
// allowed and means no timeout, as zero does.
func (cfg *Config) checkHeaderLimits() error {
	if cfg.Sockets.MaxResponseHeaderBytes < 0 {
		return errors.New("transport: negative MaxResponseHeaderBytes")
	}
	return nil
}

// responseHeaderTimeout is the http.Transport value for
// cfg.Sockets.ResponseHeaderTimeout: zero or negative is none (zero in
// http.Transport).
func (cfg *Config) responseHeaderTimeout() time.Duration {
	return max(cfg.Sockets.ResponseHeaderTimeout, 0)
}

// maxResponseHeaderBytes is the http.Transport value for
// cfg.Sockets.MaxResponseHeaderBytes, after checkHeaderLimits.
func (cfg *Config) maxResponseHeaderBytes() int64 {
	if cfg.Sockets.MaxResponseHeaderBytes == 0 {
		return defaultMaxResponseHeaderBytes
	}
	return cfg.Sockets.MaxResponseHeaderBytes
}
