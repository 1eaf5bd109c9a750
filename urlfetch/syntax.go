package urlfetch

import "strings"

// The syntax checks net/http makes before it writes a request, made here
// first so that a request it would refuse is an [ErrInvalidURL] or
// [ErrInvalidRequest], never mistaken for a failure of the exchange.

// validToken reports whether s is an HTTP token (RFC 9110, section 5.6.2),
// the syntax of methods and header names.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validFieldValue reports whether s may be sent as a header value: no
// control character but the horizontal tab (RFC 9110, section 5.5).
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost reports whether s may be sent as the Host header: only bytes
// that may appear in a host and port of a URI (RFC 3986, section 3.2.2),
// the same set net/http accepts.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0) {
			return false
		}
	}
	return true
}
