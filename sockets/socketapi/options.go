package socketapi

import (
	"os"
	"strconv"
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

// ErrOptionNotPermitted is wrapped by the error of every get or set of a
// socket option App Engine does not support. It also matches
// syscall.EACCES (App Engine refused the option with PERMISSION_DENIED,
// which its socket module raised as EACCES), os.ErrPermission and
// syscall.EPERM.
var ErrOptionNotPermitted error = &sentinel{"socketapi: socket option not permitted", []error{syscall.EACCES, os.ErrPermission, syscall.EPERM}}

type optKey struct{ level, name int }

// placeholders are what App Engine returned for the eight options it
// supports; SO_LINGER reads as 0, lingering off.
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

// optionName returns the name of the option at level with the given number,
// such as "SO_KEEPALIVE", or "option N at level L" for one it does not know.
func optionName(level, name int) string {
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
			return 0, &Error{Op: "getsockopt", Arg: optionName(level, name), Err: err}
		}
		return v, nil
	}
	return placeholders[k], nil
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
		return &Error{Op: op, Arg: optionName(k.level, k.name), Err: err}
	}
	return nil
}

// GetsockoptInt reads the socket option name at level (syscall numbers).
// The supported options read back App Engine's placeholders: SO_KEEPALIVE
// 0, SO_DEBUG 128, TCP_NODELAY 0, SO_LINGER 0 (lingering off),
// SO_OOBINLINE 0, SO_SNDBUF 2097152, SO_RCVBUF 2097152, SO_REUSEADDR 1.
// SO_ERROR reads the socket's real pending error (and clears it, as
// getsockopt does). Any other option fails with an *[Error] that matches
// [ErrOptionNotPermitted], syscall.EACCES and os.ErrPermission.
func (c *Conn) GetsockoptInt(level, name int) (int, error) {
	return getInt(c.sock(), c.handle(), level, name)
}

// SetsockoptInt accepts and ignores value for a supported option, as App
// Engine did (SO_LINGER included, whatever the value), and refuses any
// other option (SO_ERROR included) with an *[Error] that matches
// [ErrOptionNotPermitted], syscall.EACCES and os.ErrPermission.
func (c *Conn) SetsockoptInt(level, name, value int) error {
	return set(c.sock(), c.handle(), level, name)
}

func (c *Conn) handle() *handle {
	if c == nil {
		return nil
	}
	return &c.h
}
