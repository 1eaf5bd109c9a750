package sockets

import (
	"encoding/json"
	"expvar"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Usage is a count of bytes carried by a socket or sent to a host. App Engine
// bills socket traffic as outgoing bandwidth; Sent and Received are the
// payload bytes the application wrote and read (for a TLS connection made
// with [Conn.StartTLS], the bytes on the wire, records and handshake
// included).
type Usage struct {
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
}

// Add returns the sum of u and v.
func (u Usage) Add(v Usage) Usage {
	return Usage{Sent: u.Sent + v.Sent, Received: u.Received + v.Received}
}

// counter is a Usage updated with atomic adds, so the data path takes no lock.
type counter struct {
	sent, received atomic.Int64
}

func (c *counter) load() Usage {
	return Usage{Sent: c.sent.Load(), Received: c.received.Load()}
}

// Meter totals the bytes of every connection and packet socket that uses it,
// per destination host: the host as it was dialed (a name, lower-cased,
// without a trailing dot, or an IP literal), and for datagrams of a
// [PacketConn] the address each was sent to or received from. Set it as
// [Dialer.Meter].
//
// A connection's bytes are counted in its own counters only (one atomic add
// per read or write, on a cache line no other connection shares); a host's
// total is the sum of its live connections' counters and of those already
// closed, added up when it is read. So the data path takes no lock and
// connections to one host do not contend.
//
// The zero Meter is ready to use; a nil *Meter reads as an empty one (no
// hosts, zero totals). A Meter is safe for concurrent use. *Meter
// is an [expvar.Var]: publish it with expvar.Publish("sockets", m) to export
// the totals as JSON. A Meter must not be copied after first use.
type Meter struct {
	// OnClose, if set, is called once for each connection or packet socket
	// when it is closed or reclaimed, with the host its traffic was totalled
	// under (for a [PacketConn], the empty string) and the socket's own
	// totals. It is called on the goroutine that closed the socket, or the
	// reclaimer's, and must not block. Set it before first use.
	OnClose func(host string, u Usage)

	hosts sync.Map // string -> *hostTotals
}

var _ expvar.Var = (*Meter)(nil)

// hostTotals are the bytes of one host.
type hostTotals struct {
	packets counter // datagrams of PacketConns, added as they go

	// mu guards closed and live; it is taken when a connection opens or
	// closes, and when the totals are read, never on the data path.
	mu     sync.Mutex
	closed Usage                 // connections no longer live
	live   map[*counter]struct{} // the counters of live connections
}

func (h *hostTotals) load() Usage {
	u := h.packets.load()
	h.mu.Lock()
	defer h.mu.Unlock()
	u = u.Add(h.closed)
	for c := range h.live {
		u = u.Add(c.load())
	}
	return u
}

// host returns the totals of host, creating them on first use.
func (m *Meter) host(host string) *hostTotals {
	if h, ok := m.hosts.Load(host); ok {
		return h.(*hostTotals)
	}
	h, _ := m.hosts.LoadOrStore(host, new(hostTotals))
	return h.(*hostTotals)
}

// open adds a live connection's counter to host's totals.
func (m *Meter) open(host string, c *counter) *hostTotals {
	h := m.host(host)
	h.mu.Lock()
	if h.live == nil {
		h.live = make(map[*counter]struct{})
	}
	h.live[c] = struct{}{}
	h.mu.Unlock()
	return h
}

// close moves a connection's counter from live to closed.
func (h *hostTotals) close(c *counter) {
	h.mu.Lock()
	delete(h.live, c)
	h.closed = h.closed.Add(c.load())
	h.mu.Unlock()
}

// Host returns the bytes sent to and received from host so far.
func (m *Meter) Host(host string) Usage {
	if m == nil {
		return Usage{}
	}
	if h, ok := m.hosts.Load(meterHost(host)); ok {
		return h.(*hostTotals).load()
	}
	return Usage{}
}

// Snapshot returns the totals of every host seen so far. The map is the
// caller's; each host's entry is read atomically, but the hosts are not read
// at one instant.
func (m *Meter) Snapshot() map[string]Usage {
	out := make(map[string]Usage)
	if m == nil {
		return out
	}
	m.hosts.Range(func(k, v any) bool {
		out[k.(string)] = v.(*hostTotals).load()
		return true
	})
	return out
}

// Total returns the sum over every host.
func (m *Meter) Total() Usage {
	var t Usage
	if m == nil {
		return t
	}
	m.hosts.Range(func(_, v any) bool {
		t = t.Add(v.(*hostTotals).load())
		return true
	})
	return t
}

// String returns the snapshot as a JSON object, hosts in order:
//
//	{"smtp.example.com": {"sent": 1024, "received": 256}}
//
// It makes *Meter an [expvar.Var].
func (m *Meter) String() string {
	snap := m.Snapshot()
	var b strings.Builder
	b.WriteByte('{')
	for i, h := range slices.Sorted(maps.Keys(snap)) {
		if i > 0 {
			b.WriteString(", ")
		}
		k, _ := json.Marshal(h)
		v, _ := json.Marshal(snap[h])
		b.Write(k)
		b.WriteString(": ")
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}

// meterHost is the key a host is totalled under.
func meterHost(host string) string {
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
