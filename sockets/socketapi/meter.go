package socketapi

import (
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

// add returns the sum of u and v.
func (u Usage) add(v Usage) Usage {
	return Usage{Sent: u.Sent + v.Sent, Received: u.Received + v.Received}
}

// counter is a Usage updated with atomic adds, so the data path takes no lock.
type counter struct {
	sent, received atomic.Int64
}

func (c *counter) load() Usage {
	return Usage{Sent: c.sent.Load(), Received: c.received.Load()}
}

// defaultMaxHosts is how many hosts a Meter totals separately when its
// MaxHosts is zero.
const defaultMaxHosts = 1024

// overflowHost is the key under which a Meter totals, together, the
// traffic of the hosts beyond its cap and the datagrams a PacketConn
// received from addresses it never sent to. No host name or IP address can
// take this key: a name has no parentheses, an address no letters.
const overflowHost = "(other)"

// Meter totals the bytes of every connection and packet socket that uses it,
// per destination host: the host as it was dialed (a name, lower-cased,
// without a trailing dot, or an IP literal), and for the datagrams of a
// [PacketConn] the IP address each was sent to. Set it as [Dialer.Meter].
//
// A Meter is bounded: it totals at most MaxHosts hosts separately (1024 by
// default), the first ones it sees, and the traffic of every other host
// under the one key "(other)", which no host name or address can take; it
// never forgets a host. Received datagrams never add a host: a PacketConn
// counts the bytes of a datagram under its source only if the socket sent
// a datagram to that address before (a reply), and under "(other)"
// otherwise, so that no one can grow a Meter by sending datagrams from
// many addresses.
//
// A connection's bytes are counted in its own counters only (one atomic add
// per read or write, on a cache line no other connection shares); a host's
// total is the sum of its live connections' counters and of those already
// closed, added up when it is read. So the data path takes no lock and
// connections to one host do not contend.
//
// The zero Meter is ready to use; a nil *Meter reads as an empty one (no
// hosts, zero totals). A Meter is safe for concurrent use and must not be
// copied after first use. An application that serves expvar publishes the
// totals as JSON with
//
//	expvar.Publish("sockets", expvar.Func(func() any { return m.Snapshot() }))
//
// (this package does not import expvar, whose import registers a handler
// on http.DefaultServeMux).
type Meter struct {
	// OnClose, if set, is called once for each connection or packet socket
	// when it is closed or reclaimed, with the host its traffic was totalled
	// under (the host as dialed, also when the Meter totals it under
	// "(other)"; for a [PacketConn], the empty string) and the socket's
	// own totals. It is called on the goroutine that closed the socket, or
	// the reclaimer's, and must not block. Set it before first use.
	OnClose func(host string, u Usage)

	// MaxHosts is how many hosts the Meter totals separately; the traffic
	// of any further host is totalled under "(other)". Zero or negative
	// means 1024. Set it before first use.
	MaxHosts int

	hosts sync.Map // string -> *hostTotals

	// n is the number of hosts in hosts, overflowHost aside. A host's
	// place is taken in n before it is stored, so hosts never holds more
	// than the cap.
	n atomic.Int64
}

func (m *Meter) maxHosts() int64 {
	if m.MaxHosts > 0 {
		return int64(m.MaxHosts)
	}
	return defaultMaxHosts
}

// hostTotals are the bytes of one host.
type hostTotals struct {
	packets  counter // datagrams of PacketConns, added as they go
	overflow bool    // the totals of overflowHost

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
	u = u.add(h.closed)
	for c := range h.live {
		u = u.add(c.load())
	}
	return u
}

// host returns the totals of host, creating them on first use, or the
// totals of overflowHost once the Meter holds its cap of hosts.
func (m *Meter) host(host string) *hostTotals {
	if h, ok := m.hosts.Load(host); ok {
		return h.(*hostTotals)
	}
	if host == overflowHost {
		return m.overflow()
	}
	if m.n.Add(1) > m.maxHosts() {
		m.n.Add(-1)
		return m.overflow()
	}
	h, loaded := m.hosts.LoadOrStore(host, new(hostTotals))
	if loaded {
		m.n.Add(-1) // stored meanwhile by another socket
	}
	return h.(*hostTotals)
}

// overflow returns the totals of overflowHost, creating them on first use.
func (m *Meter) overflow() *hostTotals {
	if h, ok := m.hosts.Load(overflowHost); ok {
		return h.(*hostTotals)
	}
	h, _ := m.hosts.LoadOrStore(overflowHost, &hostTotals{overflow: true})
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
	h.closed = h.closed.add(c.load())
	h.mu.Unlock()
}

// Host returns the bytes sent to and received from host so far: zero for a
// host the Meter does not total separately (one it never saw, or one
// beyond its cap, whose bytes are in Host("(other)")).
func (m *Meter) Host(host string) Usage {
	if m == nil {
		return Usage{}
	}
	if h, ok := m.hosts.Load(meterHost(host)); ok {
		return h.(*hostTotals).load()
	}
	return Usage{}
}

// Snapshot returns the totals of every host the Meter totals separately,
// and of "(other)" once it has any: at most MaxHosts+1 entries. The map is
// the caller's; each host's entry is read atomically, but the hosts are
// not read at one instant. The sum of its values is the Meter's total.
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

// meterHost is the key a host is totalled under.
func meterHost(host string) string {
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
