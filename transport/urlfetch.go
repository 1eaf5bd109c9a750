package transport

import (
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/urlfetch"
)

// newURLFetch builds the urlfetch backend. Its dialer carries URL Fetch's
// destination rule (sockets.PublicPolicy) unless cfg names a policy; the
// port, method, size and deadline rules belong to urlfetch.Transport and
// hold whatever the policy.
func newURLFetch(cfg Config) (*urlfetch.Transport, error) {
	tc := cfg.TLS
	if tc.Logger == nil {
		tc.Logger = cfg.Logger
	}
	t := &urlfetch.Transport{
		Dialer:     cfg.dialer(sockets.PublicPolicy()),
		TLS:        tc,
		AppID:      cfg.AppID,
		Deadline:   cfg.Deadline,
		Background: cfg.Background,
		OnStats:    cfg.OnStats,
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}
