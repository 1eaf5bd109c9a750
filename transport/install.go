package transport

import (
	"net/http"
	"sync/atomic"
)

// installed is the sockets backend's *http.Transport that Install last put
// in http.DefaultTransport, or nil, so that BackendOf can recognise it.
// Only Install and its restore function change it, as they change
// http.DefaultTransport.
var installed atomic.Pointer[http.Transport]

// installable returns the *http.Transport that Install puts in
// http.DefaultTransport for rt: the sockets backend's own, or nil for any
// other rt, which is installed as it is.
func installable(rt http.RoundTripper) *http.Transport {
	t, ok := rt.(*Transport)
	if !ok || t == nil {
		return nil
	}
	if st, ok := t.base.(*socketsTransport); ok && st != nil {
		return st.Transport
	}
	return nil
}
