package socketapi

import (
	"errors"
	"strconv"
	"strings"
)

// Error is the error of a call of App Engine's Sockets API that this
// package refuses, or that fails for a reason of its own:
//
//   - a socket option, Op "getsockopt" or "setsockopt" ([Conn.GetsockoptInt],
//     [Conn.SetsockoptInt] and their [PacketConn] forms), with the option's
//     name in Arg. Err is [ErrOptionNotPermitted] for an option App Engine
//     did not support, errors.ErrUnsupported for SO_ERROR on a connection
//     without a file descriptor (one made by a Connect seam), the system's
//     error for SO_ERROR, or the reason the socket is no longer usable
//     ([ErrReclaimed], [ErrHandedOff], net.ErrClosed).
//   - a hand-off, Op "detach", "attach", "listen", "receive" or "idle
//     left" ([Conn.Detach], [Conn.DetachTo], [PacketConn.DetachTo],
//     [Dialer.Attach], [Dialer.AttachPacket], [Registry.Listen],
//     [Registry.IdleLeft], [Registry.Close], and the
//     receiving side's failures given to [Registry.OnReceiveError]). Err
//     is, or wraps, one of [ErrBadDescriptor], [ErrWrongApp],
//     [ErrStaleDescriptor] (or [ErrExpiredDescriptor]), [ErrWrongKind],
//     [ErrNoRegistry], [ErrWeakKey], [ErrTLSNotMovable], [ErrForeignPeer],
//     [ErrNoAccess], [ErrPeerMismatch],
//     [ErrRegistryFull], [ErrSenderGone], [ErrReceiverGone],
//     [ErrBadTransfer], a *[sockets.DeniedError] when an attaching
//     Dialer's policy refuses a socket received from another process,
//     errors.ErrUnsupported where hand-off between processes is not
//     available, a context's error, or, from a detach, the reason the
//     connection cannot be handed off ([ErrReclaimed], [ErrHandedOff],
//     net.ErrClosed). A sentinel may be joined with the system error
//     behind it, as in "no registry ...: dial unix ...: connect: no such
//     file or directory".
//   - a call App Engine's Sockets API did not implement, Op "reverse
//     lookup" ([Dialer.LookupAddr]), with the argument as given in Arg and
//     Err [ErrNotImplemented].
//   - a call App Engine's socket module refused with an errno of its own:
//     Op "shutdown", Arg "SHUT_RD", Err syscall.ENOTCONN for a second
//     [Conn.CloseRead]; Op "sendto", with the address in Arg, for
//     [Conn.WriteTo] on a connected socket, whose Err matches
//     syscall.EISCONN and net.ErrWriteToConnected.
//
// The sentinels carry what else the error matches: a refused option
// matches syscall.EACCES (App Engine refused it with PERMISSION_DENIED,
// which its socket module raised as EACCES), os.ErrPermission and
// syscall.EPERM; a call not implemented matches errors.ErrUnsupported.
// Use errors.Is and errors.As, never the message.
type Error struct {
	Op  string // "getsockopt", "setsockopt", "detach", "attach", "listen", "receive", "idle left", "reverse lookup", "shutdown" or "sendto"
	Arg string // the option ("SO_BROADCAST"; "option 99 at level 1" when unknown), the side shut down ("SHUT_RD"), the address of a sendto, or the argument of a call not implemented; empty for a hand-off

	App       string // hand-off: the application the descriptor or its socket belongs to; empty when unknown
	AttachApp string // hand-off: the AppID of the Dialer that tried to attach, for ErrWrongApp
	Path      string // hand-off between processes: the registry's Unix socket; empty otherwise

	Err error
}

// Error returns a message such as
//
//	socketapi: getsockopt SO_BROADCAST: socket option not permitted
//	socketapi: attach: stale socket descriptor
//	socketapi: detach to "/run/worker/registry.sock": receiving registry is full
//	socketapi: reverse lookup of "8.8.8.8": not implemented
//	socketapi: sendto 192.0.2.1:53: socket is already connected
func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	msg := "socketapi: " + e.Op
	switch {
	case e.Op == "getsockopt" || e.Op == "setsockopt" || e.Op == "shutdown" || e.Op == "sendto":
		msg += " " + e.Arg
	case e.Arg != "" || e.Op == "reverse lookup":
		msg += " of " + strconv.Quote(e.Arg)
	}
	if e.Path != "" {
		if e.Op == "detach" {
			msg += " to "
		} else {
			msg += " on "
		}
		msg += strconv.Quote(e.Path)
	}
	msg += ": " + strings.TrimPrefix(errText(e.Err), "socketapi: ")
	if errors.Is(e.Err, ErrWrongApp) {
		msg += " (descriptor for " + strconv.Quote(e.App) + ", attaching as " + strconv.Quote(e.AttachApp) + ")"
	}
	return msg
}

// Unwrap returns Err.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// sentinel is the type of the sentinels that match other errors besides
// themselves: [ErrReclaimed] matches net.ErrClosed and syscall.EPIPE,
// [ErrHandedOff] matches net.ErrClosed, the error of [Conn.WriteTo]
// matches syscall.EISCONN and net.ErrWriteToConnected,
// [ErrExpiredDescriptor] matches [ErrStaleDescriptor],
// [ErrOptionNotPermitted] matches syscall.EACCES, os.ErrPermission and
// syscall.EPERM, and [ErrNotImplemented] matches errors.ErrUnsupported.
type sentinel struct {
	msg  string
	also []error
}

func (e *sentinel) Error() string { return e.msg }

// Is reports whether target is one of the errors e also matches. The
// comparison cannot panic: the errors in also are of comparable types, and
// interfaces of different dynamic types compare unequal.
func (e *sentinel) Is(target error) bool {
	for _, a := range e.also {
		if a == target {
			return true
		}
	}
	return false
}

// errText is err's message, "<nil>" for nil.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
