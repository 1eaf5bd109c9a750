package socketapi

// ConnInFlight returns the number of operations in progress on c, so that a
// test can wait until a Read it started has begun.
func ConnInFlight(c *Conn) int { return int(c.h.state.Load() & inflightMask) }

// DefaultIdleTimeout is the idle timeout of a Dialer whose IdleTimeout is
// zero.
const DefaultIdleTimeout = defaultIdleTimeout

// DefaultMaxHosts is how many hosts a Meter whose MaxHosts is zero totals
// separately.
const DefaultMaxHosts = defaultMaxHosts

// OverflowHost is the key under which a Meter totals the hosts beyond its
// cap and the datagrams nobody asked for.
const OverflowHost = overflowHost

// OptionName is the name of a socket option, as errors give it.
var OptionName = optionName
