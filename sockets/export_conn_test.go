package sockets

// ConnInFlight returns the number of operations in progress on c, so that a
// test can wait until a Read it started has begun.
func ConnInFlight(c *Conn) int { return int(c.h.state.Load() & inflightMask) }
