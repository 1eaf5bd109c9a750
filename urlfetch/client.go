package urlfetch

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// MaxRedirects is the number of redirects a client made by [NewClient]
// follows for one request.
const MaxRedirects = 5

// NewClient returns an http.Client that sends its requests through rt and
// follows redirects as App Engine's URL Fetch did (see [CheckRedirect]).
// A nil rt means a new zero [Transport]; any other RoundTripper (the
// sockets backend, say) gets the same redirect rule. Every hop is a
// RoundTrip of rt, so a [Transport] checks each one against its rules and
// its policy again.
//
// A redirect from https to http is followed, as App Engine followed it,
// but from that hop on no Authorization, Cookie or Proxy-Authorization
// header, and no user information in the URL, is sent: net/http compares
// only host names, and would send them in clear text to the same host.
// (A [Transport] refuses a URL with user information anyway, on any hop,
// so that http.Client never sends it as Authorization.) See
// [CheckRedirect].
//
// The Transport's deadline bounds each hop; to bound the whole chain, give
// the request a context with a deadline. The client has no cookie jar. A
// jar set on it later is asked for cookies by net/http after CheckRedirect
// ran, for each hop's URL: it gives an http URL none of its Secure cookies,
// but it does give the others, as it would to any plain http request.
func NewClient(rt http.RoundTripper) *http.Client {
	if rt == nil {
		rt = new(Transport)
	}
	return &http.Client{Transport: rt, CheckRedirect: CheckRedirect}
}

// CheckRedirect is the redirect rule of App Engine's URL Fetch, for
// http.Client.CheckRedirect:
//
//   - at most [MaxRedirects] redirects are followed, and only for the
//     statuses 301, 302, 303 and 307. A 308 is not followed: the client
//     returns it to the caller as it came. The sixth redirect fails with an
//     error matching [ErrTooManyRedirects], which the client returns
//     wrapped in a *url.Error. A redirect without a Location header is
//     returned as it came too (http.Client does not call CheckRedirect for
//     it), as App Engine's Go runtime returned it.
//   - on 301, 302 and 303 a GET stays GET and a HEAD stays HEAD; any other
//     method becomes GET without its body. A 307 keeps the method and the
//     body. (This is what net/http does; CheckRedirect leaves the method
//     alone.) The application's Content-Type is still sent once the body
//     has gone, as App Engine sent it: http.Client drops it, with
//     Content-Encoding, Content-Language and Content-Location, and
//     CheckRedirect puts them back as the application set them.
//   - no Referer header is added: http.Client sets the previous hop's URL
//     (its query included) as Referer, and CheckRedirect removes it, as
//     App Engine sent the application's headers alone. A Referer the
//     application set on its request is kept on a hop to the same origin
//     (scheme, host and port, the scheme's default port for none) as that
//     request, and removed on a hop to any other, where it was not meant
//     to go.
//   - once a hop has gone from https to http, no Authorization, Cookie or
//     Proxy-Authorization header is sent, on that hop and on every later
//     one, back on https included, and the URL's user information (which
//     net/http would send as Authorization) is dropped. The downgrade
//     itself is followed, as App Engine followed it; refusing it would
//     break sites that redirect to http, and the credentials are what must
//     not travel in clear text.
//
// CheckRedirect may add and remove headers of req and remove the user
// information from req.URL; it reads the headers of via[0], the
// application's request. It is safe for concurrent use.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	if status == http.StatusPermanentRedirect {
		return http.ErrUseLastResponse
	}
	if len(via) > MaxRedirects {
		url := ""
		if req.URL != nil {
			url = redact(req.URL)
		}
		return &Error{Kind: ErrTooManyRedirects, Method: req.Method, URL: url,
			Err: fmt.Errorf("urlfetch: stopped after %d redirects", MaxRedirects)}
	}
	// google/appengine/api/urlfetch_stub.py, _RetrieveURL,
	// PRESERVE_ON_REDIRECT: net/http already keeps GET and HEAD on 301, 302
	// and 303, turns every other method into GET without its body, and
	// keeps both on 307, as App Engine did. The method is not touched here.
	if len(via) > 0 {
		// urlfetch_stub.py, _RetrieveURL: every hop carries the
		// application's own headers, and nothing http.Client adds.
		setReferer(req, via[0])
		restoreBodyHeaders(req, via[0])
	}
	if downgraded(req, via) {
		stripCredentials(req)
	}
	return nil
}

// setReferer leaves on req, the next hop, no Referer header but the one
// the application set on its request orig, and that one only when req
// goes to the same origin as orig: http.Client adds the previous hop's URL
// as Referer, which App Engine never sent.
func setReferer(req, orig *http.Request) {
	for k := range req.Header {
		if http.CanonicalHeaderKey(k) == "Referer" {
			delete(req.Header, k)
		}
	}
	if req.URL == nil || orig.URL == nil || !sameOrigin(req.URL, orig.URL) {
		return
	}
	for k, vs := range orig.Header {
		if http.CanonicalHeaderKey(k) == "Referer" {
			if req.Header == nil {
				req.Header = make(http.Header)
			}
			req.Header[k] = slices.Clone(vs)
		}
	}
}

// bodyHeaders are the headers http.Client drops with the body, on a
// redirect that turns a request into a GET.
var bodyHeaders = [...]string{"Content-Type", "Content-Encoding", "Content-Language", "Content-Location"}

// restoreBodyHeaders sets on req, the next hop, the body headers the
// application set on its request orig: App Engine sent the application's
// Content-Type on every hop, also once a POST had become a GET
// (urlfetch_stub.py, _RetrieveURL), and http.Client drops it.
func restoreBodyHeaders(req, orig *http.Request) {
	for k, vs := range orig.Header {
		if slices.Contains(bodyHeaders[:], http.CanonicalHeaderKey(k)) {
			if req.Header == nil {
				req.Header = make(http.Header)
			}
			req.Header[k] = slices.Clone(vs)
		}
	}
}

// sameOrigin reports whether a and b have the same origin (RFC 6454):
// scheme, host and port, the scheme's default port for none.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && originPort(a) == originPort(b)
}

// originPort returns the port of u, or its scheme's default port for none
// or "0" (which a Transport takes for the default port).
func originPort(u *url.URL) string {
	if p := u.Port(); p != "" && p != "0" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// credentialHeaders are the headers never sent after an https-to-http hop.
var credentialHeaders = [...]string{"Authorization", "Cookie", "Proxy-Authorization"}

// downgraded reports whether the chain of requests via, then req, has a
// hop from https to http.
func downgraded(req *http.Request, via []*http.Request) bool {
	secure := false
	for _, r := range via {
		switch {
		case r.URL == nil:
		case strings.EqualFold(r.URL.Scheme, "https"):
			secure = true
		case secure && strings.EqualFold(r.URL.Scheme, "http"):
			return true
		}
	}
	return secure && req.URL != nil && strings.EqualFold(req.URL.Scheme, "http")
}

// stripCredentials removes the credential headers, in any letter case,
// and the URL's user information from req, the next hop, which
// http.Client built and owns.
func stripCredentials(req *http.Request) {
	for k := range req.Header {
		ck := http.CanonicalHeaderKey(k)
		for _, h := range credentialHeaders {
			if ck == h {
				delete(req.Header, k)
			}
		}
	}
	if req.URL != nil && req.URL.User != nil {
		u := *req.URL
		u.User = nil
		req.URL = &u
	}
}
