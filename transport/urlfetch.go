package transport

import "github.com/outbound-go/outbound/urlfetch"

// newURLFetch builds the urlfetch backend. A nil Dialer.Policy is URL
// Fetch's, sockets.PublicPolicy (urlfetch.Transport's zero value); the
// port, method, size and deadline rules belong to urlfetch.Transport and
// hold whatever the policy.
func newURLFetch(cfg Config) (*urlfetch.Transport, error) {
	t := &urlfetch.Transport{
		Dialer:     cfg.Dialer,
		TLS:        cfg.tlsConfig(),
		AppID:      cfg.URLFetch.AppID,
		Deadline:   cfg.URLFetch.Deadline,
		Background: cfg.URLFetch.Background,
		OnStats:    cfg.URLFetch.OnStats,
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}
