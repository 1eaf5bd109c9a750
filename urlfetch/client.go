package urlfetch

import (
	"fmt"
	"net/http"
)

// MaxRedirects is the number of redirects a client made by [NewClient]
// follows for one request.
const MaxRedirects = 5

// NewClient returns an http.Client that sends its requests through rt and
// follows redirects as App Engine's URL Fetch did (see [CheckRedirect]).
// A nil rt means a new zero [Transport]. Every hop is a RoundTrip of rt, so
// a [Transport] checks each one against its rules and its policy again.
//
// The Transport's deadline bounds each hop; to bound the whole chain, give
// the request a context with a deadline. The client has no cookie jar.
func NewClient(rt http.RoundTripper) *http.Client {
	if rt == nil {
		rt = new(Transport)
	}
	return &http.Client{Transport: rt, CheckRedirect: CheckRedirect}
}

// CheckRedirect is the redirect rule of App Engine's URL Fetch, for
// http.Client.CheckRedirect: at most [MaxRedirects] redirects are followed,
// and only for the statuses 301, 302, 303 and 307. A 308 is not followed:
// the client returns it to the caller as it came. The method of the next
// request becomes GET, except after a 307, which keeps the method and the
// body. The sixth redirect fails with an error matching
// [ErrTooManyRedirects], which the client returns wrapped in a *url.Error.
//
// CheckRedirect may change req.Method; it is safe for concurrent use.
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
	if status != http.StatusTemporaryRedirect && req.Method != http.MethodGet {
		// net/http already turns POST into GET for 301, 302 and 303, and
		// drops the body; App Engine did it for every method.
		req.Method = http.MethodGet
	}
	return nil
}
