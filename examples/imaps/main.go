// Command imaps logs in to an IMAP server over implicit TLS (IMAPS, port
// 993), selects a mailbox read-only and lists its newest messages. The
// connection comes from socketapi.Dialer, the Sockets API emulation, so it
// is checked against App Engine's Sockets API policy (imap.gmail.com:993 is
// one of its exceptions), the TLS handshake is tlsconf's, and the IMAP
// client is go-imap's.
//
// The password is read from the IMAP_PASSWORD environment variable, so that
// it does not show in the process list:
//
//	IMAP_PASSWORD=app-password go run ./examples/imaps \
//		-addr imap.gmail.com:993 -user me@gmail.com -n 5
//
// Run its tests, which start a real IMAP server on loopback, with:
//
//	go test ./examples/imaps
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/outbound-go/outbound/sockets/socketapi"
	"github.com/outbound-go/outbound/tlsconf"
)

// config says which server and mailbox to read.
type config struct {
	Addr     string         // IMAPS server, "host:port"
	User     string         // LOGIN user name
	Password string         // LOGIN password
	Mailbox  string         // mailbox to list; empty means INBOX
	Count    int            // how many of the newest messages to list; 0 or less means 10
	TLS      tlsconf.Config // the zero value verifies against the system roots
}

func main() {
	log.SetFlags(0)
	cfg := config{Password: os.Getenv("IMAP_PASSWORD")}
	flag.StringVar(&cfg.Addr, "addr", "imap.gmail.com:993", "IMAPS server `host:port`")
	flag.StringVar(&cfg.User, "user", "", "user name (password from $IMAP_PASSWORD)")
	flag.StringVar(&cfg.Mailbox, "mailbox", "INBOX", "mailbox to list")
	flag.IntVar(&cfg.Count, "n", 10, "how many of the newest messages to list")
	timeout := flag.Duration("timeout", time.Minute, "time limit for the whole session")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	err := run(ctx, &socketapi.Dialer{}, cfg, os.Stdout)
	cancel()
	stop()
	if err != nil {
		log.Fatal("imaps: ", err)
	}
}

// run connects through d, completes the TLS handshake, logs in, and writes
// the newest messages of the mailbox to out, newest first.
func run(ctx context.Context, d *socketapi.Dialer, cfg config, out io.Writer) (err error) {
	mailbox, count := cfg.Mailbox, cfg.Count
	if mailbox == "" {
		mailbox = "INBOX"
	}
	if count <= 0 {
		count = 10
	}
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
		return err // a *sockets.DeniedError when the policy refuses
	}
	tc, err := tlsconf.Handshake(ctx, conn, base, host) // closes conn on failure
	if err != nil {
		return err
	}
	c := imapclient.New(tc, nil)
	defer c.Close()
	// The IMAP client takes no context: closing it when ctx is done ends
	// every command it is waiting for.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer func() {
		stop()
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
	}()

	if err := c.Login(cfg.User, cfg.Password).Wait(); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("select %s: %w", mailbox, err)
	}
	fmt.Fprintf(out, "%s: %d messages\n", mailbox, sel.NumMessages)
	if sel.NumMessages > 0 {
		// Sequence numbers follow arrival order: the newest are the last.
		first := uint32(1)
		if sel.NumMessages > uint32(count) {
			first = sel.NumMessages - uint32(count) + 1
		}
		var newest imap.SeqSet
		newest.AddRange(first, sel.NumMessages)
		msgs, err := c.Fetch(newest, &imap.FetchOptions{Envelope: true}).Collect()
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(b.SeqNum, a.SeqNum) })
		for _, m := range msgs {
			if m.Envelope == nil {
				return errors.New("fetch: the server sent no envelope")
			}
			fmt.Fprintf(out, "%4d  %s  %-28s  %s\n", m.SeqNum, m.Envelope.Date.Format(time.DateOnly), sender(m.Envelope), m.Envelope.Subject)
		}
	}
	return c.Logout().Wait()
}

// sender returns the first From address of e, or "-".
func sender(e *imap.Envelope) string {
	if len(e.From) == 0 {
		return "-"
	}
	return e.From[0].Addr()
}
