// Package googlefeed keeps the Google rule of a [sockets.Policy] current.
//
// The policy refuses Google's services: the addresses in Google's
// goog.json that are not in its cloud.json. Package sockets embeds one
// dated pair of these files, and Google moves addresses in and out of
// Google Cloud after that date, so a long-running program that relies on
// the rule fetches the files again from time to time. A [Feed] does that:
// on an interval, through the http.Client it is given, it fetches both
// files, installs them only if they are newer than the ones it holds and
// pass its checks (see [Feed]), and swaps them in atomically; a policy
// built with [sockets.Policy.WithGoogleRangesFunc] reads them at each
// check:
//
//	// The files are on www.gstatic.com, one of Google's own addresses, so
//	// the feed's client must not be refused Google's ranges.
//	client, err := transport.SafeClient(&sockets.Dialer{Policy: sockets.PublicPolicy()})
//	if err != nil {
//		return err
//	}
//	feed := &googlefeed.Feed{Client: client, MeterProvider: mp}
//	go feed.Run(ctx) // now, then every 24 hours, until ctx is done
//
//	policy := sockets.DefaultPolicy().WithGoogleRangesFunc(feed.Ranges)
//	rt, err := transport.New(transport.Config{
//		Backend: transport.Sockets,
//		Dialer:  sockets.Dialer{Policy: policy},
//	})
//
// Until the first update succeeds, the policy refuses the embedded ranges,
// which are the floor: a Feed never goes back to older files. How old the
// ranges are is in [Feed.Ranges]'s Created and SyncToken, and in the gauge
// outbound.google_ranges.creation_time (the Unix time, in seconds, of
// goog.json's creationTime) on the Feed's MeterProvider; why the last
// update failed, if it did, is [Feed.Err].
package googlefeed
