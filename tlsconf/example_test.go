package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"

	"github.com/outbound-go/outbound/tlsconf"
)

// A base configuration for HTTP clients, built once and shared.
func ExampleClient() {
	base, err := tlsconf.Client(tlsconf.Config{}, "h2", "http/1.1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tls.VersionName(base.MinVersion))
	fmt.Println(base.NextProtos)
	fmt.Println(base.InsecureSkipVerify)

	// For IMAPS or SMTP STARTTLS: TLS 1.3 only, no ALPN.
	mail, err := tlsconf.Client(tlsconf.Config{MinVersion: tls.VersionTLS13})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tls.VersionName(mail.MinVersion), len(mail.NextProtos))
	// Output:
	// TLS 1.2
	// [h2 http/1.1]
	// false
	// TLS 1.3 0
}

func ExampleForHost() {
	base, err := tlsconf.Client(tlsconf.Config{})
	if err != nil {
		log.Fatal(err)
	}
	for _, host := range []string{"imap.example.com.", "[2001:db8::1]"} {
		fmt.Printf("%q\n", tlsconf.ForHost(base, host).ServerName)
	}
	fmt.Printf("%q\n", base.ServerName)
	// Output:
	// "imap.example.com"
	// "2001:db8::1"
	// ""
}

func ExampleAsCertificateError() {
	// An error as a handshake with the wrong name returns it.
	handshakeErr := &tls.CertificateVerificationError{
		Err: x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"www.example.com"}}, Host: "example.com"},
	}

	err := tlsconf.AsCertificateError("example.com", handshakeErr)
	fmt.Println(err)
	fmt.Println(errors.Is(err, tlsconf.ErrCertificate))
	var ce *tlsconf.CertificateError
	if errors.As(err, &ce) {
		fmt.Println(ce.Host)
	}
	// Output:
	// tlsconf: certificate for example.com: not valid for name "example.com" (valid for www.example.com)
	// true
	// example.com
}
