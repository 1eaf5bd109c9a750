// Package urlfetch is an http.RoundTripper that behaves like App Engine's
// URL Fetch service.
package urlfetch
