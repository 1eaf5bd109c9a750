package lab

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netNSID returns the identity of the calling process's network namespace,
// as "net:[inode]".
func netNSID() (string, error) {
	return os.Readlink("/proc/self/ns/net")
}

// nsMode is one way of making a network namespace for a child process.
type nsMode struct {
	name string
	attr func() *syscall.SysProcAttr
}

// nsModes returns the ways to try, in order: a plain network namespace
// when the process may make one (as root), else a network namespace owned
// by a new user namespace where the process's user is root.
func nsModes() []nsMode {
	var modes []nsMode
	if os.Geteuid() == 0 {
		modes = append(modes, nsMode{"network namespace (unshare -n)", func() *syscall.SysProcAttr {
			return &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
		}})
	}
	modes = append(modes, nsMode{"user and network namespaces (unshare -rn)", func() *syscall.SysProcAttr {
		return &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
			GidMappingsEnableSetgroups: false,
			Pdeathsig:                  syscall.SIGKILL,
		}
	}})
	return modes
}

// runInNetNS re-runs the test binary for t alone in a new network
// namespace, reports its output and result on t.
func runInNetNS(t *testing.T) {
	t.Helper()
	parent, err := netNSID()
	if err != nil {
		unavailable(t, fmt.Sprintf("cannot read this process's network namespace: %v", err))
		return
	}
	exe, err := os.Executable()
	if err != nil {
		unavailable(t, fmt.Sprintf("cannot find the test binary: %v", err))
		return
	}
	args := []string{"-test.run=" + runPattern(t.Name()), "-test.v", "-test.count=1"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		// The child times out first, with its goroutines in the log.
		if left := time.Until(d) * 9 / 10; left > 0 {
			args = append(args, fmt.Sprintf("-test.timeout=%v", left))
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("socketstest: InNetNS: %v", err)
	}
	defer r.Close()

	// Pdeathsig is sent when the thread that started the child ends: keep
	// this goroutine on one thread until the child has ended.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cmd *exec.Cmd
	var failures []string
	for _, m := range nsModes() {
		c := exec.CommandContext(ctx, exe, args...)
		c.Env = append(os.Environ(), envNetNS+"="+parent, envNetNSTest+"="+t.Name())
		c.Stdout, c.Stderr = w, w
		c.SysProcAttr = m.attr()
		if err := c.Start(); err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v%s", m.name, err, cloneHint(err)))
			continue
		}
		cmd = c
		break
	}
	w.Close()
	if cmd == nil {
		unavailable(t, "cannot make one: "+strings.Join(failures, "; "))
		return
	}

	// Read to the end (the child's exit closes the pipe), then wait.
	result := childNotRun
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimSuffix(line, "\n"); line != "" {
			t.Log(line)
			if res, ok := resultOf(line, t.Name()); ok {
				result = res
			}
		}
		if err != nil {
			break
		}
	}
	err = cmd.Wait()
	switch {
	case ctx.Err() != nil:
		t.Fatalf("socketstest: InNetNS: the test in its network namespace was stopped at the test deadline: %v", err)
	case err != nil || result == childFailed:
		t.Fatalf("socketstest: InNetNS: the test failed in its network namespace (%v); its output is above", err)
	case result == childSkipped:
		t.Skip("socketstest: InNetNS: the test skipped itself in its network namespace; its output is above")
	case result != childPassed:
		t.Fatalf("socketstest: InNetNS: %s did not run in its network namespace; the output is above", t.Name())
	}
}

// cloneHint explains the usual reasons a namespace cannot be made.
func cloneHint(err error) string {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return " (no CAP_SYS_ADMIN, or user namespaces disabled or blocked by a seccomp or AppArmor policy)"
	case errors.Is(err, syscall.ENOSPC):
		return " (the limit of user namespaces is reached: /proc/sys/user/max_user_namespaces)"
	case errors.Is(err, syscall.EINVAL):
		return " (the kernel lacks network or user namespaces)"
	}
	return ""
}

// enterNetNS checks that the process is in a network namespace other than
// parent's, with no interface up but loopback, and fails t otherwise; then
// it brings lo up and adds addrs to it.
func enterNetNS(t *testing.T, parent string, addrs []netip.Addr) {
	t.Helper()
	self, err := netNSID()
	if err != nil {
		t.Fatalf("socketstest: InNetNS: cannot read the network namespace: %v", err)
	}
	if parent == "" || self == parent {
		t.Fatalf("socketstest: InNetNS: not in a new network namespace (here %s, started from %q): refusing to run", self, parent)
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatalf("socketstest: InNetNS: %v", err)
	}
	var lo *net.Interface
	for i := range ifaces {
		switch ifc := &ifaces[i]; {
		case ifc.Name == "lo" && ifc.Flags&net.FlagLoopback != 0:
			lo = ifc
		case ifc.Flags&net.FlagUp != 0:
			t.Fatalf("socketstest: InNetNS: interface %s is up in the network namespace: refusing to run", ifc.Name)
		}
	}
	if lo == nil {
		t.Fatalf("socketstest: InNetNS: no loopback interface lo in the network namespace")
	}
	if err := linkUp(lo.Index); err != nil {
		unavailable(t, fmt.Sprintf("cannot bring lo up: %v", err))
	}
	for _, a := range addrs {
		if err := addAddr(lo.Index, a); err != nil {
			unavailable(t, fmt.Sprintf("cannot add %v to lo: %v", a, err))
		}
	}
	// Check what the kernel now says.
	have, err := lo.Addrs()
	if err != nil {
		t.Fatalf("socketstest: InNetNS: %v", err)
	}
	for _, a := range addrs {
		found := false
		for _, h := range have {
			if p, ok := h.(*net.IPNet); ok {
				if ha, ok := netip.AddrFromSlice(p.IP); ok && ha.Unmap() == a.Unmap() {
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("socketstest: InNetNS: %v is not on lo after adding it (lo has %v)", a, have)
		}
	}
	// The kernel makes an IPv6 address local (its route in the local
	// table) in a work queue, after the acknowledgement; until then a
	// packet to it goes out on lo and is dropped. Wait until every
	// address is local.
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range addrs {
		for {
			local, err := isLocal(a)
			if err != nil {
				t.Fatalf("socketstest: InNetNS: route to %v: %v", a, err)
			}
			if local {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("socketstest: InNetNS: %v is not local after 10 s", a)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// linkUp sets the interface with index up, through rtnetlink (RFC 3549),
// as "ip link set lo up" does.
func linkUp(index int) error {
	msg := make([]byte, unix.SizeofIfInfomsg)
	msg[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(msg[4:], uint32(index))
	binary.NativeEndian.PutUint32(msg[8:], unix.IFF_UP)  // flags
	binary.NativeEndian.PutUint32(msg[12:], unix.IFF_UP) // change
	_, err := netlinkDo(unix.RTM_NEWLINK, 0, msg)
	return err
}

// addAddr adds a to the interface with index as a host address, as "ip
// addr add a dev lo" does. An address already there is kept.
func addAddr(index int, a netip.Addr) error {
	a = a.Unmap()
	family, bits := byte(unix.AF_INET), byte(32)
	if a.Is6() {
		family, bits = unix.AF_INET6, 128
	}
	msg := make([]byte, unix.SizeofIfAddrmsg)
	msg[0] = family
	msg[1] = bits
	msg[2] = unix.IFA_F_NODAD // no duplicate address detection: usable at once
	msg[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(msg[4:], uint32(index))
	msg = appendAttr(msg, unix.IFA_LOCAL, a.AsSlice())
	msg = appendAttr(msg, unix.IFA_ADDRESS, a.AsSlice())
	_, err := netlinkDo(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, msg)
	return err
}

// appendAttr appends an rtnetlink attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	n := unix.SizeofRtAttr + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for n%4 != 0 {
		b = append(b, 0)
		n++
	}
	return b
}

// isLocal reports whether the route to a is a local one, as "ip route get
// a" shows it.
func isLocal(a netip.Addr) (bool, error) {
	a = a.Unmap()
	msg := make([]byte, unix.SizeofRtMsg)
	msg[0], msg[1] = unix.AF_INET, 32 // family, destination length
	if a.Is6() {
		msg[0], msg[1] = unix.AF_INET6, 128
	}
	msg = appendAttr(msg, unix.RTA_DST, a.AsSlice())
	replies, err := netlinkDo(unix.RTM_GETROUTE, 0, msg)
	if errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, m := range replies {
		if m.Header.Type == unix.RTM_NEWROUTE && len(m.Data) >= unix.SizeofRtMsg {
			return m.Data[7] == unix.RTN_LOCAL, nil // rtm_type
		}
	}
	return false, errors.New("no route in the reply")
}

// netlinkDo sends one rtnetlink request and returns the kernel's replies
// up to its acknowledgement, or the error the acknowledgement carries.
func netlinkDo(typ, flags uint16, body []byte) ([]syscall.NetlinkMessage, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	const seq = 1
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	var replies []syscall.NetlinkMessage
	for {
		buf := make([]byte, 32<<10) // replies keep slices of it
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("netlink reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			if m.Header.Type != unix.NLMSG_ERROR {
				replies = append(replies, m)
				continue
			}
			if len(m.Data) < 4 {
				return nil, errors.New("netlink reply: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return nil, syscall.Errno(-code)
			}
			return replies, nil // the acknowledgement
		}
	}
}

// maxFill is the most connections a black hole's queue may take before it
// is seen full.
const maxFill = 8

// newBlackHole listens on addr with an accept queue of length zero and
// fills the queue with connections that are never accepted, until the
// kernel counts it full (more waiting than its length, the test by which
// it drops SYNs: sk_acceptq_is_full). On Linux one connection fills it:
// a queue holds one connection more than its length.
func newBlackHole(addr netip.AddrPort) (_ *BlackHole, err error) {
	ln, err := listenBacklog0(addr)
	if err != nil {
		return nil, err
	}
	b := &BlackHole{addr: ln.Addr().(*net.TCPAddr).AddrPort(), ln: ln}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		queued, length, err := acceptQueue(rc)
		switch {
		case err != nil:
			return nil, err
		case queued > length:
			return b, nil
		case int(queued) >= len(b.filler) && len(b.filler) == maxFill:
			return nil, fmt.Errorf("queue not full after %d connections", maxFill)
		case int(queued) >= len(b.filler):
			// Every filler is in the queue and it is not full: one
			// more. On loopback the handshake takes microseconds; a
			// SYN not answered in 2 s (a retransmission included) was
			// dropped, by a kernel that counts a queue of length zero
			// full from the start.
			d := net.Dialer{Timeout: 2 * time.Second}
			c, err := d.Dial("tcp", b.addr.String())
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && queued == 0 {
				return b, nil
			}
			if err != nil {
				return nil, fmt.Errorf("filling the queue: %w", err)
			}
			b.filler = append(b.filler, c)
		case time.Now().After(deadline):
			return nil, fmt.Errorf("%d connections made, %d in the queue after 10 s", len(b.filler), queued)
		default:
			// The kernel is still queueing a connection that has
			// completed its handshake on the client's side.
			time.Sleep(time.Millisecond)
		}
	}
}

// listenBacklog0 listens on addr with listen(2)'s backlog 0, which
// net.Listen cannot do.
func listenBacklog0(addr netip.AddrPort) (net.Listener, error) {
	var (
		fd  int
		err error
		sa  unix.Sockaddr
	)
	if a := addr.Addr().Unmap(); a.Is4() {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.As4()}
	} else {
		fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		sa = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16()}
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "black hole")
	defer f.Close() // FileListener holds a copy
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return net.FileListener(f)
}

// acceptQueue returns how many connections wait in the accept queue of a
// listening socket, and the queue's length (TCP_INFO reports them in
// tcpi_unacked and tcpi_sacked for a listener).
func acceptQueue(rc syscall.RawConn) (queued, length uint32, err error) {
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, 0, err
	}
	if serr != nil {
		return 0, 0, fmt.Errorf("TCP_INFO: %w", serr)
	}
	return info.Unacked, info.Sacked, nil
}
