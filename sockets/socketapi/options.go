package socketapi

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Socket options, with App Engine's semantics. App Engine's Sockets API let
// a program get and set eight options: reading one returns a fixed
// placeholder, not the socket's real setting, and setting one is accepted
// and ignored. Every other option is refused, except that SO_ERROR reads the
// socket's real pending error.
//
// Levels and names are the platform's numbers, as in the syscall package:
// syscall.SOL_SOCKET with syscall.SO_KEEPALIVE, syscall.IPPROTO_TCP with
// syscall.TCP_NODELAY, and so on.

// Linger is the value of SO_LINGER, as struct linger: whether lingering is
// on, and for how many seconds. The zero Linger is "off", App Engine's
// placeholder.
type Linger struct {
	On      bool
	Seconds int
}

// ErrOptionNotPermitted is wrapped by the error of every get or set of a
// socket option App Engine does not support. Such an error also matches
// syscall.EACCES (App Engine refused the option with PERMISSION_DENIED,
// which its socket module raised as EACCES), os.ErrPermission and
// syscall.EPERM.
var ErrOptionNotPermitted = errors.New("socketapi: socket option not permitted")

// OptionError is the error of a socket option call. Err is
// [ErrOptionNotPermitted] for an option that is not supported, syscall.EINVAL
// for a Linger call on an option that is not SO_LINGER, errors.ErrUnsupported
// for SO_ERROR on a connection without a file descriptor (one made by a
// [Dialer.Connect] seam), the system's error for SO_ERROR, or the reason
// the socket is no longer usable ([ErrReclaimed], [ErrHandedOff],
// net.ErrClosed).
type OptionError struct {
	Op     string // "getsockopt" or "setsockopt"
	Level  int
	Name   int
	Option string // the option's name, such as "SO_BROADCAST", or "option 99 at level 1" when unknown
	Err    error
}

// Error returns a message such as
//
//	sockets: getsockopt SO_BROADCAST: socket option not permitted
func (e *OptionError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return "socketapi: " + e.Op + " " + e.Option + ": " + strings.TrimPrefix(errText(e.Err), "socketapi: ")
}

// Unwrap returns Err.
func (e *OptionError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether a refused option's error matches syscall.EACCES,
// os.ErrPermission or syscall.EPERM.
func (e *OptionError) Is(target error) bool {
	return e.Unwrap() == ErrOptionNotPermitted && (target == syscall.EACCES || target == os.ErrPermission || target == syscall.EPERM)
}

type optKey struct{ level, name int }

// placeholders are what App Engine returned for the eight options it
// supports; soLinger reads as the zero Linger.
var placeholders = map[optKey]int{
	{solSocket, soKeepAlive}: 0,
	{solSocket, soDebug}:     128,
	{ipprotoTCP, tcpNodelay}: 0,
	{solSocket, soLinger}:    0,
	{solSocket, soOOBInline}: 0,
	{solSocket, soSndbuf}:    2097152,
	{solSocket, soRcvbuf}:    2097152,
	{solSocket, soReuseaddr}: 1,
}

// OptionName returns the name of the option at level with the given number,
// such as "SO_KEEPALIVE", or "option N at level L" for one it does not know.
func OptionName(level, name int) string {
	if s, ok := optionNames[optKey{level, name}]; ok {
		return s
	}
	return "option " + strconv.Itoa(name) + " at level " + strconv.Itoa(level)
}

// optionNames names the supported options, SO_ERROR, and the common options
// a program may try and be refused.
var optionNames = func() map[optKey]string {
	m := map[optKey]string{
		{solSocket, soKeepAlive}: "SO_KEEPALIVE",
		{solSocket, soDebug}:     "SO_DEBUG",
		{ipprotoTCP, tcpNodelay}: "TCP_NODELAY",
		{solSocket, soLinger}:    "SO_LINGER",
		{solSocket, soOOBInline}: "SO_OOBINLINE",
		{solSocket, soSndbuf}:    "SO_SNDBUF",
		{solSocket, soRcvbuf}:    "SO_RCVBUF",
		{solSocket, soReuseaddr}: "SO_REUSEADDR",
		{solSocket, soError}:     "SO_ERROR",
	}
	for k, v := range otherOptionNames {
		m[k] = v
	}
	return m
}()

// getInt reads an option of socket s, whose handle is h.
func getInt(s *socket, h *handle, level, name int) (int, error) {
	k := optKey{level, name}
	if err := optionCheck(s, h, "getsockopt", k); err != nil {
		return 0, err
	}
	if k == (optKey{solSocket, soError}) {
		v, err := soErrorOf(s.raw)
		if err != nil {
			return 0, &OptionError{Op: "getsockopt", Level: level, Name: name, Option: OptionName(level, name), Err: err}
		}
		return v, nil
	}
	return placeholders[k], nil
}

// getLinger reads SO_LINGER.
func getLinger(s *socket, h *handle, level, name int) (Linger, error) {
	k := optKey{level, name}
	if err := optionCheck(s, h, "getsockopt", k); err != nil {
		return Linger{}, err
	}
	if k != (optKey{solSocket, soLinger}) {
		return Linger{}, &OptionError{Op: "getsockopt", Level: level, Name: name, Option: OptionName(level, name), Err: syscall.EINVAL}
	}
	return Linger{}, nil
}

// set accepts and ignores a value for a supported option.
func set(s *socket, h *handle, level, name int) error {
	return optionCheck(s, h, "setsockopt", optKey{level, name})
}

// optionCheck returns the error of an option call on a socket that is no
// longer usable, or of an option that is not permitted.
func optionCheck(s *socket, h *handle, op string, k optKey) error {
	var err error
	switch {
	case s == nil:
		err = errZeroConn
	default:
		err = h.liveErr()
	}
	if err == nil && (k != optKey{solSocket, soError} || op != "getsockopt") {
		if _, ok := placeholders[k]; !ok {
			err = ErrOptionNotPermitted
		}
	}
	if err != nil {
		return &OptionError{Op: op, Level: k.level, Name: k.name, Option: OptionName(k.level, k.name), Err: err}
	}
	return nil
}

// GetsockoptInt reads the socket option name at level (syscall numbers).
// The supported options read back App Engine's placeholders: SO_KEEPALIVE
// 0, SO_DEBUG 128, TCP_NODELAY 0, SO_LINGER 0 (off), SO_OOBINLINE 0,
// SO_SNDBUF 2097152, SO_RCVBUF 2097152, SO_REUSEADDR 1. SO_ERROR reads the
// socket's real pending error (and clears it, as getsockopt does). Any
// other option fails with an *[OptionError] that matches
// [ErrOptionNotPermitted], syscall.EACCES and os.ErrPermission.
func (c *Conn) GetsockoptInt(level, name int) (int, error) {
	return getInt(c.sock(), c.handle(), level, name)
}

// SetsockoptInt accepts and ignores value for a supported option, as App
// Engine did, and refuses any other option (SO_ERROR included) with an
// *[OptionError] that matches [ErrOptionNotPermitted], syscall.EACCES and
// os.ErrPermission.
func (c *Conn) SetsockoptInt(level, name, value int) error {
	return set(c.sock(), c.handle(), level, name)
}

// GetsockoptLinger reads SO_LINGER, which is always the zero Linger. Other
// supported options fail with syscall.EINVAL, and unsupported ones as in
// [Conn.GetsockoptInt].
func (c *Conn) GetsockoptLinger(level, name int) (Linger, error) {
	return getLinger(c.sock(), c.handle(), level, name)
}

// SetsockoptLinger accepts and ignores l for a supported option, and refuses
// any other as [Conn.SetsockoptInt] does.
func (c *Conn) SetsockoptLinger(level, name int, l Linger) error {
	return set(c.sock(), c.handle(), level, name)
}

func (c *Conn) handle() *handle {
	if c == nil {
		return nil
	}
	return &c.h
}

// errText is err's message, "<nil>" for nil.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
