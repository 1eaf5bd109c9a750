// Command smtp sends one message through an SMTP submission server the way
// an App Engine application sends mail over the Sockets API: a connection
// from socketapi.Dialer, checked against the Sockets API policy (port 587 is
// allowed, plain SMTP on port 25 is refused), STARTTLS with a configuration
// from tlsconf, AUTH PLAIN, then the message, all with the standard net/smtp
// client.
//
// The password is read from the SMTP_PASSWORD environment variable, so that
// it does not show in the process list:
//
//	SMTP_PASSWORD=app-password go run ./examples/smtp \
//		-addr smtp.gmail.com:587 -user me@gmail.com -to you@example.com \
//		-subject 'Hello' -body 'Sent through Outbound.'
//
// Run its tests, which start a real SMTP server on loopback, with:
//
//	go test ./examples/smtp
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/smtp"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/outbound-go/outbound/sockets/socketapi"
	"github.com/outbound-go/outbound/tlsconf"
)

// config is what one run sends, and where.
type config struct {
	Addr     string   // submission server, "host:port"
	User     string   // AUTH PLAIN user name
	Password string   // AUTH PLAIN password
	From     string   // envelope and header sender; empty means User
	To       []string // recipients
	Subject  string
	Body     string         // plain text; line endings become CRLF
	TLS      tlsconf.Config // the zero value verifies against the system roots
}

func main() {
	log.SetFlags(0)
	cfg := config{Password: os.Getenv("SMTP_PASSWORD")}
	var to string
	flag.StringVar(&cfg.Addr, "addr", "smtp.gmail.com:587", "submission server `host:port`")
	flag.StringVar(&cfg.User, "user", "", "AUTH PLAIN user name (password from $SMTP_PASSWORD)")
	flag.StringVar(&cfg.From, "from", "", "sender address (default: -user)")
	flag.StringVar(&to, "to", "", "comma-separated recipient addresses")
	flag.StringVar(&cfg.Subject, "subject", "Hello from Outbound", "subject line")
	flag.StringVar(&cfg.Body, "body", "Sent over the sockets policy with STARTTLS and AUTH PLAIN.\n", "message text")
	timeout := flag.Duration("timeout", time.Minute, "time limit for the whole exchange")
	flag.Parse()
	for addr := range strings.SplitSeq(to, ",") {
		if addr = strings.TrimSpace(addr); addr != "" {
			cfg.To = append(cfg.To, addr)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	err := run(ctx, &socketapi.Dialer{}, cfg, os.Stdout)
	cancel()
	stop()
	if err != nil {
		log.Fatal("smtp: ", err)
	}
}

// run composes the message of cfg and sends it through d. A destination the
// policy refuses, such as port 25, fails with a *sockets.DeniedError before
// any connection is made.
func run(ctx context.Context, d *socketapi.Dialer, cfg config, out io.Writer) error {
	if cfg.From == "" {
		cfg.From = cfg.User
	}
	if cfg.From == "" || len(cfg.To) == 0 {
		return errors.New("a sender (-from or -user) and at least one recipient (-to) are needed")
	}
	msg := compose(cfg, time.Now())
	if err := send(ctx, d, cfg, msg); err != nil {
		return err
	}
	fmt.Fprintf(out, "sent %d bytes from %s to %s through %s\n", len(msg), cfg.From, strings.Join(cfg.To, ", "), cfg.Addr)
	return nil
}

// compose returns an RFC 5322 message with CRLF line endings. The subject
// may be any UTF-8 text: it is encoded as RFC 2047 requires.
func compose(cfg config, date time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <%s>\r\n", cfg.From)
	fmt.Fprintf(&b, "To: <%s>\r\n", strings.Join(cfg.To, ">, <"))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", cfg.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n\r\n")
	body := strings.ReplaceAll(cfg.Body, "\r\n", "\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	return []byte(b.String())
}

// send delivers msg: connect through d, STARTTLS, AUTH PLAIN, MAIL, RCPT,
// DATA, QUIT. It never authenticates over a connection without TLS: a
// server that does not offer STARTTLS is an error.
func send(ctx context.Context, d *socketapi.Dialer, cfg config, msg []byte) (err error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("server address %q: %w", cfg.Addr, err)
	}
	base, err := tlsconf.Client(cfg.TLS)
	if err != nil {
		return err
	}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return err
	}
	// net/smtp takes no context: when ctx is done, an expired deadline
	// unblocks whatever it is waiting for.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer func() {
		stop()
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
	}()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.StartTLS(tlsconf.ForHost(base, host)); err != nil {
		return tlsconf.AsCertificateError(host, err)
	}
	if err := c.Auth(smtp.PlainAuth("", cfg.User, cfg.Password, host)); err != nil {
		return err
	}
	if err := c.Mail(cfg.From); err != nil {
		return err
	}
	for _, to := range cfg.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
