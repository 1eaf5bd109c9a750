package transport

import (
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
)

// proxyDialer returns the dialer template both backends build on: Dialer
// itself when no proxy is named, or a copy of it (Dialer is never changed)
// with Proxy set when one is, cfg.Proxy winning over Dialer's own. For an
// https:// proxy the copy's ProxyTLS, if Dialer has none, is cfg.TLS made
// by tlsconf, so that a private CA (RootCAs) verifies the proxy as it
// verifies destinations. The proxy URL is checked here, once, so that New
// refuses an unusable one.
func (cfg *Config) proxyDialer() (*sockets.Dialer, error) {
	proxy := cfg.Proxy
	if proxy == nil && cfg.Dialer != nil {
		proxy = cfg.Dialer.Proxy
	}
	if proxy == nil {
		return cfg.Dialer, nil
	}
	if err := sockets.CheckProxy(proxy); err != nil {
		return nil, err
	}
	d := new(sockets.Dialer)
	if cfg.Dialer != nil {
		*d = *cfg.Dialer
	}
	d.Proxy = proxy
	if proxy.Scheme == "https" && d.ProxyTLS == nil {
		tc, err := tlsconf.Client(cfg.tlsConfig())
		if err != nil {
			return nil, err
		}
		d.ProxyTLS = tc
	}
	return d, nil
}
