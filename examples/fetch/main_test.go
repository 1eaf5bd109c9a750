package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDemo runs the offline demonstration that the README's first command
// runs, and checks each thing it promises to show.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := demo(context.Background(), &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`urlfetch GET http://www.example.com/: 200 OK`,
		`sockets  GET http://www.example.com/: 200 OK`,
		`urlfetch GET http://intranet.example/: refused by rule "private (RFC 1918)" (address 10.0.0.1:80)`,
		`sockets  GET http://intranet.example/: refused by rule "private (RFC 1918)" (address 10.0.0.1:80)`,
		`urlfetch GET http://storage.example/: 200 OK`,
		`sockets  GET http://storage.example/: refused by rule "google range"`,
		`sockets  GET http://www.example.com:25/: refused by rule "smtp port 25"`,
		`urlfetch POST 11 MiB: refused by urlfetch: request body over 10 MiB, nothing sent`,
		`connections made: 3,`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}
