package transport

import (
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
)

// setProxyTLS checks cfg.Dialer.Proxy, once, so that New refuses an
// unusable one, and for an https:// proxy with no ProxyTLS of its own sets
// the one made by tlsconf from cfg.TLS, so that a private CA (RootCAs)
// verifies the proxy as it verifies destinations. It changes cfg, New's
// copy, never the caller's.
func (cfg *Config) setProxyTLS() error {
	proxy := cfg.Dialer.Proxy
	if proxy == nil {
		return nil
	}
	if err := sockets.CheckProxy(proxy); err != nil {
		return err
	}
	if proxy.Scheme == "https" && cfg.Dialer.ProxyTLS == nil {
		tc, err := tlsconf.Client(cfg.tlsConfig())
		if err != nil {
			return err
		}
		cfg.Dialer.ProxyTLS = tc
	}
	return nil
}
