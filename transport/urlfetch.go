package transport

import "github.com/outbound-go/outbound/urlfetch"

// newURLFetch builds the urlfetch backend. urlfetch.Transport merges the
// policy, resolver and dialer template as Config documents (its Policy and
// Resolver win over the Dialer's; no policy at all means URL Fetch's,
// sockets.PublicPolicy); the port, method, size and deadline rules belong
// to urlfetch.Transport and hold whatever the policy.
func newURLFetch(cfg Config) (*urlfetch.Transport, error) {
	t := &urlfetch.Transport{
		Policy:     cfg.Policy,
		Resolver:   cfg.Resolver,
		Dialer:     cfg.Dialer,
		TLS:        cfg.tlsConfig(),
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
