//go:build linux

package socketapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The system side of hand-off between processes, on Linux: a Unix socket
// file made with mode 0600, SO_PEERCRED, and SCM_RIGHTS (unix(7)).

// oobSize is the room for the descriptors of one read: up to 8, so that a
// sender that sends more is seen doing it (the kernel closes those that
// do not fit, and sets MSG_CTRUNC).
var oobSize = syscall.CmsgSpace(8 * 4)

// listenRegistry makes the Unix socket at path, mode 0600, and returns its
// listener and the socket file's information. The socket is bound in a new
// directory of mode 0700 beside path, given its mode there, and only then
// linked at path, so that no other user can connect to it in between (the
// process's umask, which bind(2) applies, cannot be changed for one call in
// a program with threads). Linking fails if path exists.
func listenRegistry(path string) (*net.UnixListener, os.FileInfo, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".r")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	name := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	ln.SetUnlinkOnClose(false)
	fi, err := linkSocket(name, path)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return ln, fi, nil
}

func linkSocket(name, path string) (os.FileInfo, error) {
	if err := os.Chmod(name, 0o600); err != nil {
		return nil, err
	}
	if err := os.Link(name, path); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return fi, nil
}

// dialRegistry connects to the Inbox at path.
func dialRegistry(ctx context.Context, path string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return nil, joinErr(ErrNoAccess, err)
		}
		return nil, joinErr(ErrNoRegistry, err)
	}
	return c.(*net.UnixConn), nil
}

// peerUID returns the effective user ID of the process at the other end of
// uc, as the kernel recorded it when the connection was made.
func peerUID(uc *net.UnixConn) (int, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, os.NewSyscallError("getsockopt SO_PEERCRED", cerr)
	}
	return int(cred.Uid), nil
}

// sendWithFD writes frame over uc with the descriptor of rc attached to its
// first byte.
func sendWithFD(uc *net.UnixConn, frame []byte, rc syscall.RawConn) error {
	var n int
	var werr error
	if err := rc.Control(func(fd uintptr) {
		n, _, werr = uc.WriteMsgUnix(frame, syscall.UnixRights(int(fd)), nil)
	}); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if n < len(frame) {
		// A stream socket may take part of it; the descriptor went with
		// the first byte.
		_, werr = uc.Write(frame[n:])
	}
	return werr
}

// readWithFDs reads into b and returns the descriptors that came with the
// bytes (close-on-exec: Go asks for MSG_CMSG_CLOEXEC). It returns io.EOF
// when uc is closed before any byte.
func readWithFDs(uc *net.UnixConn, b, oob []byte) (int, []int, error) {
	n, oobn, flags, _, err := uc.ReadMsgUnix(b, oob)
	var fds []int
	if oobn > 0 {
		// The kernel writes well-formed messages; a parse failure would
		// leave descriptors open, so it cannot be ignored silently.
		msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn])
		if perr != nil && err == nil {
			err = fmt.Errorf("%w: control message: %v", ErrBadTransfer, perr)
		}
		for i := range msgs {
			if msgs[i].Header.Level != syscall.SOL_SOCKET || msgs[i].Header.Type != syscall.SCM_RIGHTS {
				continue
			}
			if got, err := syscall.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if err == nil && flags&syscall.MSG_CTRUNC != 0 {
		err = fmt.Errorf("%w: too many descriptors", ErrBadTransfer)
	}
	if err == nil && n == 0 && len(b) > 0 {
		err = io.EOF
	}
	return n, fds, err
}

// adoptFD turns fd, received from another process, into a net.Conn, if it
// is a TCP or UDP socket that is not listening. fd is closed in every case
// (the net.Conn has a descriptor of its own).
func adoptFD(fd int) (net.Conn, error) {
	bad := func(what string) (net.Conn, error) {
		syscall.Close(fd)
		return nil, fmt.Errorf("%w: %s", ErrBadTransfer, what)
	}
	opt := func(name int) int {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, name)
		if err != nil {
			return -1
		}
		return v
	}
	switch opt(unix.SO_DOMAIN) {
	case unix.AF_INET, unix.AF_INET6:
	default:
		return bad("not a TCP or UDP socket")
	}
	typ, proto := opt(unix.SO_TYPE), opt(unix.SO_PROTOCOL)
	switch {
	case typ == unix.SOCK_STREAM && (proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_MPTCP):
	case typ == unix.SOCK_DGRAM && proto == unix.IPPROTO_UDP:
	default:
		return bad("not a TCP or UDP socket")
	}
	if opt(unix.SO_ACCEPTCONN) != 0 {
		return bad("a listening socket")
	}
	f := os.NewFile(uintptr(fd), "received socket")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTransfer, err)
	}
	return c, nil
}

// closeFDs closes descriptors received but not used.
func closeFDs(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}
