package rigs_test

// The real proxies of the proxy tests and benchmark: Squid, run from the
// machine's package (Debian's squid, which .ci/run installs), and
// smokescreen, Stripe's egress proxy, in this process; and a recorder, a
// relay in front of either that counts the connections made to the proxy
// and keeps the head of the request each opens with.
//
// Squid listens on 127.0.0.1 only, resolves no name (the tunnels' targets
// are IP literals; its resolver is pointed at 127.0.0.1 all the same) and
// is allowed to connect only where its configuration says: the tests run
// it in their network namespace, the benchmark on loopback.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stripe/smokescreen/pkg/smokescreen"
	"github.com/stripe/smokescreen/pkg/smokescreen/conntrack"

	"github.com/outbound-go/outbound/internal/lab"
)

// squidProxy is a Squid process run for a test, with two ports: "open",
// which tunnels to the allowed destinations without credentials, and
// "auth", which asks for squidUser's (Basic, checked by a helper program
// squid runs).
type squidProxy struct {
	dir        string
	open, auth string // "127.0.0.1:port"
	cmd        *exec.Cmd
	exited     chan struct{} // closed when squid and its shell have ended
	keepAlive  *os.File      // squid runs until this pipe is closed
	stopOnce   sync.Once
}

// squidCount numbers the squids this process starts.
var squidCount atomic.Int64

// The credentials squid's "auth" port accepts.
const squidUser, squidPass = "alice", "s3cretpw"

// startSquid starts Squid on two free ports of 127.0.0.1, allowing
// CONNECT to the hosts in allow (addresses or prefixes, in squid's "dst"
// syntax) and refusing everything else with 403. It is stopped when tb
// ends (or by stop). Where squid is not installed, or cannot drop the
// privileges it insists on dropping, tb is skipped, or failed when CI is
// "true".
func startSquid(tb testing.TB, allow ...string) *squidProxy {
	tb.Helper()
	bin, runAs, why := findSquid()
	if why != "" {
		unavailableProxy(tb, why)
	}
	s := &squidProxy{dir: tb.TempDir(), exited: make(chan struct{})}
	if runAs != nil {
		// The directory is squid's after it drops root: its logs.
		uid, _ := strconv.Atoi(runAs.Uid)
		gid, _ := strconv.Atoi(runAs.Gid)
		for _, d := range []string{filepath.Dir(s.dir), s.dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		if err := os.Chown(s.dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	s.open, s.auth = freePort(tb), freePort(tb)
	auth := filepath.Join(s.dir, "auth.sh")
	// Squid's basic authentication helper protocol: "user password" in,
	// "OK" or "ERR" out, one line each.
	helper := fmt.Sprintf("#!/bin/sh\nwhile read -r u p; do\n  if [ \"$u\" = %q ] && [ \"$p\" = %q ]; then echo OK; else echo ERR; fi\ndone\n", squidUser, squidPass)
	if err := os.WriteFile(auth, []byte(helper), 0o755); err != nil {
		tb.Fatal(err)
	}
	conf := []string{
		"http_port " + s.open + " name=open",
		"http_port " + s.auth + " name=auth",
		"visible_hostname outbound-test",
		"pid_filename " + filepath.Join(s.dir, "squid.pid"),
		"access_log stdio:" + filepath.Join(s.dir, "access.log"),
		"cache_log " + filepath.Join(s.dir, "cache.log"),
		"cache_store_log none",
		"logfile_rotate 0",
		"coredump_dir " + s.dir,
		"cache deny all",
		"cache_mem 8 MB",
		"dns_nameservers 127.0.0.1",
		"icp_port 0",
		"htcp_port 0",
		"pinger_enable off",
		"shutdown_lifetime 0 seconds",
		"connect_timeout 30 seconds",
		"auth_param basic program /bin/sh " + auth,
		"auth_param basic children 1 startup=1 idle=1",
		"auth_param basic realm outbound-test",
		"acl authport myportname auth",
		"acl authed proxy_auth REQUIRED",
		"acl CONNECT method CONNECT",
		"acl allowed dst " + strings.Join(allow, " "),
		"http_access deny !CONNECT",
		"http_access deny authport !authed",
		"http_access allow allowed",
		"http_access deny all",
	}
	if runAs != nil {
		conf = append(conf, "cache_effective_user "+runAs.Username)
	}
	confFile := filepath.Join(s.dir, "squid.conf")
	if err := os.WriteFile(confFile, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	// A service name of its own: squid names its shared memory (in
	// /dev/shm, which no network namespace separates) after it.
	service := fmt.Sprintf("outbound%d%d", os.Getpid(), squidCount.Add(1))
	// Squid runs under a shell that stops it when its standard input,
	// a pipe this process holds, reaches its end: when stop closes the
	// pipe, or when this process ends, however it ends. (A parent-death
	// signal would not do: squid loses it when it drops root.)
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	s.keepAlive = w
	const watchdog = `"$0" "$@" & pid=$!; read -r _; kill -TERM "$pid" 2>/dev/null; wait "$pid"`
	s.cmd = exec.Command("/bin/sh", "-c", watchdog, bin, "-N", "-n", service, "-f", confFile)
	s.cmd.Dir = s.dir
	s.cmd.Stdin = r
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	s.cmd.Stdout, s.cmd.Stderr = &out, &out
	err = s.cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		tb.Fatalf("starting squid: %v", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	tb.Cleanup(s.stop)
	// Ready when both ports accept.
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range []string{s.open, s.auth} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-s.exited:
				log, _ := os.ReadFile(filepath.Join(s.dir, "cache.log"))
				tb.Fatalf("squid exited at start: %v\n%s\n%s", s.cmd.ProcessState, out.String(), tail(log, 4096))
			default:
			}
			if time.Now().After(deadline) {
				tb.Fatalf("squid does not accept on %s after 30 s", addr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return s
}

// findSquid returns squid's path and the user it is to become, or why
// squid cannot run here.
func findSquid() (bin string, runAs *user.User, why string) {
	bin, err := exec.LookPath("squid")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/squid") // not in every user's PATH
	}
	if err != nil {
		return "", nil, "squid is not installed (apt-get install squid)"
	}
	// Squid refuses to run as root and, started as root, becomes
	// cache_effective_user. In a user namespace (InNetNS for a user who
	// is not root) there is no other user to become.
	if os.Geteuid() != 0 {
		return bin, nil, ""
	}
	if !realRoot() {
		return "", nil, "squid must drop root for another user, and this user namespace has none (run the tests as root)"
	}
	if runAs, err = user.Lookup("proxy"); err != nil {
		return "", nil, "no user \"proxy\" for squid to run as: " + err.Error()
	}
	return bin, runAs, ""
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// stop ends squid (SIGTERM, from its shell: with shutdown_lifetime 0 it
// ends at once, its logs written) and waits for it, killing it after 10 s.
func (s *squidProxy) stop() {
	s.stopOnce.Do(func() {
		s.keepAlive.Close()
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			// The shell and squid share the process group started for
			// them.
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	})
}

// squidLogEntry is one line of squid's access log (its native format).
type squidLogEntry struct {
	Method, URL, Result string
}

// accessLog stops squid and returns its access log.
func (s *squidProxy) accessLog(tb testing.TB) []squidLogEntry {
	tb.Helper()
	s.stop()
	b, err := os.ReadFile(filepath.Join(s.dir, "access.log"))
	if err != nil {
		tb.Fatal(err)
	}
	var entries []squidLogEntry
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		// time elapsed client result/status bytes method URL user hierarchy type
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		entries = append(entries, squidLogEntry{Method: f[5], URL: f[6], Result: f[3]})
	}
	return entries
}

// realRoot reports whether the process is root of the machine, not of a
// user namespace: its uid map is the whole identity map.
func realRoot() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}

// unavailableProxy skips tb, or fails it when CI is "true", so that a CI
// run cannot pass without the proxy tests.
func unavailableProxy(tb testing.TB, reason string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(reason + " (a failure, not a skip, as CI=true)")
	}
	tb.Skip(reason)
}

// freePort returns "127.0.0.1:port" for a port that was free a moment ago.
func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startSmokescreen runs smokescreen in this process on 127.0.0.1, with
// its default policy (no ACL: every destination its classifier allows,
// which refuses private, loopback and other non-global addresses), the
// extra ranges deny refused and allow allowed, and TLS with tlsCfg when
// it is not nil. When dialOK is not nil, smokescreen's own connections
// are made only to the addresses it reports true for. It returns the
// address, and is stopped when tb ends.
func startSmokescreen(tb testing.TB, tlsCfg *tls.Config, deny, allow []string, dialOK func(netip.AddrPort) bool) string {
	tb.Helper()
	cfg := smokescreen.NewConfig()
	cfg.Log = logrus.New()
	cfg.Log.Out = io.Discard
	cfg.ConnectTimeout = 30 * time.Second
	if err := cfg.SetDenyRanges(deny); err != nil {
		tb.Fatal(err)
	}
	if err := cfg.SetAllowRanges(allow); err != nil {
		tb.Fatal(err)
	}
	// Its dials to destinations end when it stops: net.DialTimeout, its
	// default, would outlive it by up to ConnectTimeout.
	ctx, cancel := context.WithCancel(context.Background())
	cfg.ProxyDialTimeout = func(_ context.Context, network, addr string, timeout time.Duration) (net.Conn, error) {
		if ap, err := netip.ParseAddrPort(addr); dialOK != nil && (err != nil || !dialOK(ap)) {
			return nil, fmt.Errorf("test: smokescreen may not connect to %s", addr)
		}
		d := net.Dialer{Timeout: timeout}
		return d.DialContext(ctx, network, addr)
	}
	cfg.ShuttingDown.Store(false)
	cfg.ConnTracker = conntrack.NewTracker(cfg.IdleTimeout, cfg.MetricsClient, cfg.Log, cfg.ShuttingDown, nil)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	proxy := smokescreen.BuildProxy(cfg)
	proxy.Logger = discardLog // goproxy's own complaints (a client that reset a tunnel)
	srv := &http.Server{Handler: proxy, ErrorLog: discardLog}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		cancel()
		srv.Close()
		// Tunnels are hijacked connections, which Close does not reach.
		cfg.ConnTracker.Range(func(k, _ any) bool {
			k.(*conntrack.InstrumentedConn).Close()
			return true
		})
		<-done
	})
	return ln.Addr().String()
}

// recorder is a relay in front of a proxy: it counts the connections made
// to it, keeps the head of the request each one opens with (the CONNECT
// line and its header fields), and passes every byte on to the proxy and
// back. It is how a test sees what Outbound asked the proxy, and that a
// refused dial asked it nothing.
type recorder struct {
	*lab.Server
	upstream string

	mu    sync.Mutex
	heads []recordedHead
}

// recordedHead is the head of one request sent to the proxy.
type recordedHead struct {
	Method, Target, Host string
	Header               http.Header
}

func newRecorder(tb testing.TB, upstream string) *recorder {
	tb.Helper()
	r := &recorder{upstream: upstream}
	r.Server = lab.NewServer(tb, r.relay)
	return r
}

// URL returns the recorder's URL, with user's credentials if not nil.
func (r *recorder) URL(user *url.Userinfo) *url.URL {
	return &url.URL{Scheme: "http", Host: r.Addr(), User: user}
}

func (r *recorder) Heads() []recordedHead {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedHead(nil), r.heads...)
}

// Targets returns the targets of the CONNECTs received so far.
func (r *recorder) Targets() []string {
	var ts []string
	for _, h := range r.Heads() {
		ts = append(ts, h.Target)
	}
	return ts
}

func (r *recorder) relay(ctx context.Context, c net.Conn) {
	var seen bytes.Buffer
	req, err := http.ReadRequest(bufio.NewReader(io.TeeReader(c, &seen)))
	if err != nil {
		return
	}
	r.mu.Lock()
	r.heads = append(r.heads, recordedHead{Method: req.Method, Target: req.RequestURI, Host: req.Host, Header: req.Header})
	r.mu.Unlock()
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", r.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { up.Close() }) // the recorder closes
	defer stop()
	if _, err := up.Write(seen.Bytes()); err != nil { // all read so far, the head and any more
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, c)
		if tc, ok := up.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	io.Copy(c, up)
	c.Close()
	<-done
}

// isIPLiteralTarget reports whether a CONNECT target is "IP:port" with an
// IP literal (IPv6 in brackets), as Outbound must send it.
func isIPLiteralTarget(target string) bool {
	_, err := netip.ParseAddrPort(target)
	return err == nil
}

// discardLog is the error log of servers whose complaints (a handshake
// cut short on purpose) are not the test's business.
var discardLog = log.New(io.Discard, "", 0)
