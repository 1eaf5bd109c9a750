package socketapi

import (
	"time"
)

// defaultIdleTimeout is how long a socket may stay unused before it is
// reclaimed when the Dialer's IdleTimeout is zero: App Engine's 10 minutes.
const defaultIdleTimeout = 10 * time.Minute

func (d *Dialer) idleTimeout() time.Duration {
	if d.IdleTimeout > 0 {
		return d.IdleTimeout
	}
	return defaultIdleTimeout
}

// The reclaimer. Each socket has one runtime timer (time.AfterFunc), which
// costs no goroutine while it waits: the runtime keeps timers in a heap and
// starts a goroutine only when one fires. The data path never touches the
// timer; when an operation ends it stores the time in an atomic (one clock
// read per operation). When the timer fires it compares that time with the
// limit: if the socket was used since, it sleeps again until the limit
// counted from the last use; otherwise it reclaims the socket. So a busy
// socket costs one timer wake-up per idle period, and an idle one exactly
// one.
//
// An operation in progress, such as a Read waiting for data that does not
// come, does not keep a socket from being reclaimed, but its start time is
// not recorded (that would cost a second clock read per operation). The
// reclaimer counts it as idle from the first time it sees it waiting with
// nothing else happening, and reclaims the socket one limit later if still
// nothing else happened: between one and two limits after the operation
// began, never sooner. The waiting operation then fails with ErrReclaimed.

// startIdleClock arms the timer. Holding mu keeps onTimer, which runs on
// another goroutine, from seeing the field before it is set.
func (s *socket) startIdleClock() {
	s.touch()
	s.mu.Lock()
	s.timer = time.AfterFunc(s.limit, s.onTimer)
	s.mu.Unlock()
}

// now returns the time on the socket's clock.
func (s *socket) now() time.Duration { return time.Since(s.born) }

// idle returns how long the socket has been unused.
func (s *socket) idle() time.Duration {
	return s.now() - time.Duration(s.lastUse.Load())
}

// onTimer reclaims the socket if it has been idle for the limit, or sleeps
// until it could be.
func (s *socket) onTimer() {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	reclaim, wait := s.claim()
	if reclaim {
		s.done = true
	} else {
		s.timer.Reset(wait)
	}
	s.mu.Unlock()
	if reclaim {
		s.raw.Close()
		s.report()
	}
}

// claim takes the socket from its owner for reclamation if it has been idle
// for the limit, or returns how long to wait before looking again. A socket
// parked in a Registry is taken from the registry. s.mu is held.
func (s *socket) claim() (bool, time.Duration) {
	h := s.owner.Load()
	if h == nil {
		if s.reg.reclaimParked(s) {
			return true, 0
		}
		// Attached meanwhile, or never parked: look again.
		return false, s.untilIdle(time.Millisecond)
	}
	v := h.state.Load()
	if status(v) != stLive {
		// Being handed off, waiting for a write to end: look again
		// later.
		return false, s.untilIdle(s.limit)
	}
	if v&inflightMask == 0 {
		s.busy = 0
		if s.idle() < s.limit {
			return false, s.untilIdle(s.limit)
		}
		// The epoch in v makes the swap fail if an operation began or
		// ended in between.
		if h.state.CompareAndSwap(v, v|stReclaimed<<statusShift) {
			return true, 0
		}
		// An operation began (look again soon, to see it in progress)
		// or ended (the limit counts from its end).
		return false, s.untilIdle(time.Millisecond)
	}
	// Operations in progress. v changes whenever one begins or ends.
	now := s.now()
	if v != s.busy {
		s.busy, s.busySince = v, now
		return false, s.limit
	}
	if waited := now - s.busySince; waited < s.limit {
		return false, s.limit - waited
	}
	if h.state.CompareAndSwap(v, v|stReclaimed<<statusShift) {
		return true, 0
	}
	return false, s.untilIdle(time.Millisecond)
}

// untilIdle returns how long until the socket has been idle for the limit,
// or, if it already has, fallback.
func (s *socket) untilIdle(fallback time.Duration) time.Duration {
	if d := s.limit - s.idle(); d > 0 {
		return d
	}
	return fallback
}
