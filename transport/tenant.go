package transport

import (
	"container/list"
	"fmt"
	"net/http"
	"sync"

	"github.com/outbound-go/outbound/sockets"
)

// maxTenants bounds the backends kept for requests that carry a policy on
// their context: the least recently used beyond it is dropped, its idle
// connections closed.
const maxTenants = 64

// tenants keeps one backend (its own connection pool) per policy that
// requests carry on their context ([sockets.WithPolicy]), so that a
// connection made under one policy is never reused for a request under
// another: net/http pools connections by scheme, host and port alone, and
// a pooled connection is not dialed again, so its address would not be
// checked against the second request's policy. Policies are told apart by
// pointer identity. It is safe for concurrent use.
type tenants struct {
	newBase func() (roundTripper, error) // makes a fresh backend for one policy

	mu       sync.Mutex
	byPolicy map[*sockets.Policy]*list.Element // of *tenant, in order
	order    list.List                         // of *tenant; the most recently used first
}

// tenant is one policy's backend.
type tenant struct {
	policy *sockets.Policy
	rt     roundTripper
}

// newTenants returns the per-policy backends of a Transport built from
// cfg, after New has filled in cfg's dialer.
func newTenants(cfg Config) *tenants {
	return &tenants{newBase: func() (roundTripper, error) {
		switch cfg.Backend {
		case URLFetch:
			return newURLFetch(cfg)
		case Sockets:
			return newSockets(cfg)
		}
		return nil, fmt.Errorf("transport: unknown backend %d", int(cfg.Backend))
	}}
}

// get returns p's backend, making it on first use and dropping the least
// recently used one beyond maxTenants.
func (ts *tenants) get(p *sockets.Policy) (roundTripper, error) {
	ts.mu.Lock()
	if e, ok := ts.byPolicy[p]; ok {
		ts.order.MoveToFront(e)
		rt := e.Value.(*tenant).rt
		ts.mu.Unlock()
		return rt, nil
	}
	rt, err := ts.newBase()
	if err != nil {
		ts.mu.Unlock()
		return nil, err
	}
	if ts.byPolicy == nil {
		ts.byPolicy = make(map[*sockets.Policy]*list.Element)
	}
	ts.byPolicy[p] = ts.order.PushFront(&tenant{policy: p, rt: rt})
	var evicted roundTripper
	if ts.order.Len() > maxTenants {
		last := ts.order.Remove(ts.order.Back()).(*tenant)
		delete(ts.byPolicy, last.policy)
		evicted = last.rt
	}
	ts.mu.Unlock()
	if evicted != nil {
		evicted.CloseIdleConnections()
	}
	return rt, nil
}

// closeIdle closes the idle connections of every policy's backend.
func (ts *tenants) closeIdle() {
	ts.mu.Lock()
	rts := make([]roundTripper, 0, ts.order.Len())
	for e := ts.order.Front(); e != nil; e = e.Next() {
		rts = append(rts, e.Value.(*tenant).rt)
	}
	ts.mu.Unlock()
	for _, rt := range rts {
		rt.CloseIdleConnections()
	}
}

// baseFor returns the backend for req: the Transport's own, or, when req's
// context carries a policy, that policy's.
func (t *Transport) baseFor(req *http.Request) (roundTripper, error) {
	if t.tenants == nil {
		return t.base, nil
	}
	p := sockets.PolicyFrom(req.Context())
	if p == nil {
		return t.base, nil
	}
	return t.tenants.get(p)
}
