package sockets

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrDenied is matched by every refusal of the policy and of the [Dialer]:
// errors.Is(err, ErrDenied) reports whether err is a policy refusal. A
// refusal is final: callers must not retry it.
var ErrDenied = errors.New("sockets: denied by policy")

// Rule names the rule that refused a connection, in words a person can read
// in a log line, such as "private (RFC 1918)" or "google range".
type Rule string

// The rules that are not address blocks. Address blocks carry the name of
// their entry in the never-public table (see [NeverPublic]).
const (
	RuleNetwork   Rule = "network not allowed (only tcp and udp)"
	RuleListen    Rule = "listening not allowed"
	RuleBind      Rule = "binding not allowed (only the unspecified address with port 0)"
	RuleMalformed Rule = "malformed address"
	RuleZone      Rule = "zoned address"
	RulePort0     Rule = "port 0"
	RuleSMTP      Rule = "smtp port 25"
	RuleFTP       Rule = "ftp port 21"
	RuleGoogle    Rule = "google range"
	RuleDenyList  Rule = "denied by the policy's deny list"
)

// DeniedError is the error for every refusal. It names the network, the host
// as the caller wrote it, the address and port that were checked, and the
// rule that refused them. It matches [ErrDenied] through errors.Is.
//
// Fields that do not apply to a refusal are zero: a refused network has no
// address, for example.
type DeniedError struct {
	Network string         // "tcp", "udp6", ...; as the caller gave it
	Host    string         // the name or literal as dialed; empty when unknown
	Addr    netip.AddrPort // the exact address checked; zero when none was reached
	Rule    Rule           // the rule that refused
	Detail  string         // optional extra words, such as the malformed input
}

// Error returns a message such as
//
//	sockets: tcp to 10.0.0.1:80 (host "intranet.example") refused: private (RFC 1918)
func (e *DeniedError) Error() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString("sockets: ")
	if e.Network != "" {
		b.WriteString(e.Network)
		b.WriteString(" ")
	}
	if e.Addr.IsValid() {
		b.WriteString("to ")
		b.WriteString(e.Addr.String())
		if e.Host != "" && e.Host != e.Addr.Addr().String() {
			b.WriteString(" (host ")
			b.WriteString(strconv.Quote(e.Host))
			b.WriteString(")")
		}
		b.WriteString(" ")
	} else if e.Host != "" {
		b.WriteString("to ")
		b.WriteString(strconv.Quote(e.Host))
		b.WriteString(" ")
	}
	b.WriteString("refused: ")
	b.WriteString(string(e.Rule))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns [ErrDenied].
func (e *DeniedError) Unwrap() error { return ErrDenied }

// Is reports whether a refused bind ([RuleBind]) matches target
// syscall.EACCES or os.ErrPermission: App Engine's Sockets API refused a
// bind with PERMISSION_DENIED, which its socket module raised as EACCES.
// Listening was not refused that way (App Engine did not implement it), so
// [RuleListen] matches neither, nor does any other rule.
func (e *DeniedError) Is(target error) bool {
	return e != nil && e.Rule == RuleBind && (target == syscall.EACCES || target == os.ErrPermission)
}

// Timeout reports false: a refusal is not a timeout. With Temporary it makes
// *DeniedError a [net.Error] that no retry logic treats as transient.
func (e *DeniedError) Timeout() bool { return false }

// Temporary reports false: a refusal is final.
func (e *DeniedError) Temporary() bool { return false }

// LookupError reports that resolving a host name failed. Err is the
// resolver's error (often a *net.DNSError).
type LookupError struct {
	Host string
	Err  error
}

func (e *LookupError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return "sockets: lookup " + strconv.Quote(e.Host) + ": " + errText(e.Err)
}

// Unwrap returns the resolver's error.
func (e *LookupError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Timeout reports whether the lookup timed out.
func (e *LookupError) Timeout() bool {
	var t interface{ Timeout() bool }
	return e.Unwrap() != nil && errors.As(e.Err, &t) && t.Timeout()
}

// Is reports whether a timed-out lookup matches context.DeadlineExceeded:
// a resolver that gives up by itself (a *net.DNSError with IsTimeout) is a
// timeout as much as one cut off by the context, and callers test both
// with errors.Is(err, context.DeadlineExceeded).
func (e *LookupError) Is(target error) bool {
	return target == context.DeadlineExceeded && e != nil && e.Timeout()
}

// Temporary reports whether the lookup failure is temporary, as the resolver
// says.
func (e *LookupError) Temporary() bool {
	var t interface{ Temporary() bool }
	return e.Unwrap() != nil && errors.As(e.Err, &t) && t.Temporary()
}

// TimeoutError reports a connect attempt that its deadline cut off: the
// dial's ([Dialer.Timeout] or the context's) or the attempt's share of it
// (see [Dialer]). Err is the connect step's error, usually a *net.OpError.
//
// It exists because net's own error for an expired connect deadline is a
// timeout but does not always match context.DeadlineExceeded (that depends
// on whether the socket's deadline or the context's timer fires first).
// A TimeoutError always matches it through errors.Is, and is a [net.Error]
// whose Timeout reports true. A connect error that already matches
// context.DeadlineExceeded is returned as it is, not wrapped.
type TimeoutError struct {
	Err error
}

// Error returns a message such as
//
//	sockets: dial tcp 192.0.2.1:443: i/o timeout
func (e *TimeoutError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return "sockets: " + errText(e.Err)
}

// Unwrap returns the connect step's error.
func (e *TimeoutError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether target is context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool { return e != nil && target == context.DeadlineExceeded }

// Timeout reports true.
func (e *TimeoutError) Timeout() bool { return true }

// Temporary reports true, as net's timeouts do.
func (e *TimeoutError) Temporary() bool { return true }

// errText returns err's message, or "<nil>" for a nil err, so that the
// Error method of an error value built without its Err does not panic.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
