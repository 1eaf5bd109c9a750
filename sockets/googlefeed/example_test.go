package googlefeed_test

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/googlefeed"
	"github.com/outbound-go/outbound/transport"
)

func ExampleFeed() {
	// The files are on www.gstatic.com, one of Google's own addresses:
	// the feed's client must be allowed Google's ranges.
	client, err := transport.SafeClient(&sockets.Dialer{Policy: sockets.PublicPolicy()})
	if err != nil {
		fmt.Println(err)
		return
	}
	feed := &googlefeed.Feed{Client: client}
	// go feed.Run(ctx) fetches Google's files now and every 24 hours,
	// until ctx is done; this example stays offline.

	policy := sockets.DefaultPolicy().WithGoogleRangesFunc(feed.Ranges)

	// Until an update succeeds, the ranges are the ones embedded in
	// package sockets, and their date says how old they are.
	g := feed.Ranges()
	fmt.Println("Google's ranges of", g.Created.Format(time.DateOnly), "sync", g.SyncToken)
	err = policy.Check("tcp", "www.google.com", netip.MustParseAddrPort("142.250.1.1:443"))
	var denied *sockets.DeniedError
	if errors.As(err, &denied) {
		fmt.Println("refused by rule", denied.Rule.Code())
	}
	fmt.Println("last error:", feed.Err())
	// Output:
	// Google's ranges of 2024-04-25 sync 1714053903689
	// refused by rule google
	// last error: <nil>
}
