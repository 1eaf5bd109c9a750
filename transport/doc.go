// Package transport picks Outbound's HTTP backend, urlfetch or sockets,
// explicitly or from the environment.
package transport
