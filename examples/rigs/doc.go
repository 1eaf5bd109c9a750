// Package rigs holds the project's test rigs that need more than the
// library does: the benchmarks against plain net/http and a peer
// (code.dny.dev/ssrf), the faults of misbehaving servers (HTTP/2 driven
// frame by frame with golang.org/x/net/http2's Framer), the load test, the
// egress proxy tests against real proxies (Squid and stripe/smokescreen)
// and the real-network tests in a network namespace. They live in the
// examples module, so that none of their dependencies reaches the
// library's go.mod, and run with the rest of the tests from the
// repository's root:
//
//	go test ./... ./examples/...
//	go test -run '^$' -bench . ./examples/rigs
//
// The package has no code of its own: everything is in its _test.go files.
package rigs
