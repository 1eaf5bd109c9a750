package googlefeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
)

// Where Google publishes its ranges.
const (
	defaultGoogURL  = "https://www.gstatic.com/ipranges/goog.json"
	defaultCloudURL = "https://www.gstatic.com/ipranges/cloud.json"
)

const (
	defaultInterval  = 24 * time.Hour
	defaultMaxShrink = 0.1
	// updateTimeout bounds each update [Feed.Run] makes; the files are
	// tens of kilobytes.
	updateTimeout = time.Minute
	// maxFile bounds a response body, as sockets.ParseGoogleRanges bounds
	// a document.
	maxFile = 16 << 20
	// metricCreationTime is the gauge Run reports while it runs.
	metricCreationTime = "outbound.google_ranges.creation_time"
)

// Feed keeps Google's ranges current: it fetches goog.json and cloud.json
// through Client, checks them, and installs the ranges of Google's
// services (goog.json minus cloud.json, as [sockets.ParseGoogleRanges]
// reads them) for [Feed.Ranges] to return. A policy follows it through
// [sockets.Policy.WithGoogleRangesFunc]:
//
//	p := sockets.DefaultPolicy().WithGoogleRangesFunc(feed.Ranges)
//
// Until an update succeeds, Ranges returns the ranges embedded in package
// sockets, which are also the floor: a Feed never installs files older
// than the ones it holds. An update is installed only when all of these
// hold:
//
//   - goog.json's syncToken, read as a number, is greater than the one
//     held (an equal one is no change and no error; a smaller one is an
//     error);
//   - cloud.json's syncToken is not smaller than goog.json's (the same
//     sync or a newer one) nor than the cloud.json held;
//   - both parse, and goog.json minus cloud.json is not empty;
//   - neither the IPv4 nor the IPv6 ranges shrink, counted in addresses
//     covered, by more than MaxShrink of what is held.
//
// Otherwise the data held stays, and [Feed.Err] reports why.
//
// Set the fields before the first call to a method, and change them no
// more; a Feed must not be copied after first use. Its methods are safe
// for concurrent use.
type Feed struct {
	// Client fetches the files. It is required: Run and Update return an
	// error for a nil Client, rather than fall back to
	// http.DefaultClient. The files are served from www.gstatic.com, one
	// of Google's own addresses, which sockets.DefaultPolicy refuses: use
	// a client whose policy lets Google's ranges through, such as
	// transport.SafeClient(&sockets.Dialer{Policy: sockets.PublicPolicy()})
	// or an http.Client over transport.New(transport.Config{}) (the
	// urlfetch backend), never one built on the policy this Feed feeds.
	Client *http.Client

	// Interval is the time between the starts of two updates of Run.
	// Zero or negative means 24 hours.
	Interval time.Duration

	// MaxShrink is the largest fraction of the addresses held, counted
	// for IPv4 and for IPv6 apart, that an update may take away: 0.25
	// lets an update drop at most a quarter of the IPv4 addresses and a
	// quarter of the IPv6 ones. Zero or negative means 0.1; 1 or more
	// lets any update through that is not empty.
	MaxShrink float64

	// GoogURL and CloudURL are where goog.json and cloud.json are
	// fetched from. Empty means Google's own,
	// https://www.gstatic.com/ipranges/goog.json and
	// https://www.gstatic.com/ipranges/cloud.json.
	GoogURL, CloudURL string

	// MeterProvider, if set, receives the gauge
	// outbound.google_ranges.creation_time (unit s, on the meter
	// github.com/outbound-go/outbound) while Run runs: the creationTime of
	// the goog.json held, as a Unix time in seconds; its distance from the
	// present is the age of the ranges. Nil means no metrics.
	MeterProvider metric.MeterProvider

	// cur is the data held; nil until first use (see current).
	cur atomic.Pointer[held]
	// lastErr is the error of the last update to finish; nil for none.
	lastErr atomic.Pointer[error]
	// mu serializes the installs of updates (not their fetches).
	mu sync.Mutex
}

// held is the data a Feed holds, with private copies of what its checks
// read: the *sockets.GoogleRanges is handed out, and a caller could change
// its exported fields.
type held struct {
	ranges      *sockets.GoogleRanges
	goog, cloud uint64    // syncTokens
	created     time.Time // goog.json's creationTime
	v4, v6      float64   // addresses covered
}

// current returns the data held, the embedded ranges until an update
// succeeds.
func (f *Feed) current() *held {
	if h := f.cur.Load(); h != nil {
		return h
	}
	// Every Feed has a copy of its own, so that no caller can change
	// another Feed's ranges' fields.
	g := sockets.DefaultPolicy().GoogleRanges()
	h := &held{ranges: g, created: g.Created}
	h.goog, _ = strconv.ParseUint(g.SyncToken, 10, 64)
	h.cloud, _ = strconv.ParseUint(g.CloudSyncToken, 10, 64)
	h.v4, h.v6 = count(g)
	if f.cur.CompareAndSwap(nil, h) {
		return h
	}
	return f.cur.Load()
}

// Ranges returns the ranges of Google's services the Feed holds: the
// embedded ones of package sockets until an update succeeds, then the last
// installed. Its Created and SyncToken (and CloudCreated, CloudSyncToken)
// say which sync of Google's files it comes from, and so how old it is.
// Ranges never returns nil, and after its first call (which may parse
// the embedded files) it is a single atomic load that does not allocate,
// as [sockets.Policy.WithGoogleRangesFunc] needs. The result is shared:
// do not change it.
func (f *Feed) Ranges() *sockets.GoogleRanges {
	return f.current().ranges
}

// Err returns the error of the last update to finish, by [Feed.Run] or
// [Feed.Update]: nil if it succeeded (installed newer files or found
// nothing newer) or if none has finished yet.
func (f *Feed) Err() error {
	if p := f.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Run updates the ranges at once and then every Interval, until ctx is
// done, when it returns ctx's error. Each update is bounded to one minute,
// and by the Client's own Timeout; a failed update leaves the ranges held
// in place, is reported by [Feed.Err], and is tried again at the next
// Interval. While it runs, Run reports the creation time of the ranges on
// MeterProvider's gauge. Run returns an error at once, before any update,
// for a nil Client or an instrument MeterProvider refuses. Run starts no
// goroutine of its own (the Client's idle connections are the Client's to
// close).
func (f *Feed) Run(ctx context.Context) error {
	if f.Client == nil {
		err := errNoClient
		f.lastErr.Store(&err)
		return err
	}
	if f.MeterProvider != nil {
		reg, err := f.register()
		if err != nil {
			return err
		}
		defer reg.Unregister()
	}
	interval := f.Interval
	if interval <= 0 {
		interval = defaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		uctx, cancel := context.WithTimeout(ctx, updateTimeout)
		f.Update(uctx)
		cancel()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

var errNoClient = errors.New("googlefeed: Feed.Client is nil")

// register registers the gauge's callback on f.MeterProvider.
func (f *Feed) register() (metric.Registration, error) {
	meter := f.MeterProvider.Meter(obs.ScopeName)
	g, err := meter.Int64ObservableGauge(metricCreationTime,
		metric.WithUnit("s"),
		metric.WithDescription("Creation time of the Google ranges the policy refuses (goog.json's creationTime), as a Unix time."))
	if err != nil {
		return nil, fmt.Errorf("googlefeed: %w", err)
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, f.current().created.Unix())
		return nil
	}, g)
	if err != nil {
		return nil, fmt.Errorf("googlefeed: %w", err)
	}
	return reg, nil
}

// Update fetches goog.json, and cloud.json when goog.json is newer than
// the ranges held, checks them as [Feed] says, and installs the new
// ranges if they pass. It returns nil when it installed them or when
// goog.json is not newer (the same syncToken), and otherwise the reason,
// which [Feed.Err] reports too. Each response body may be at most 16 MiB.
// Update is bounded by ctx; concurrent calls are safe, and the newest
// files win.
func (f *Feed) Update(ctx context.Context) error {
	err := f.update(ctx)
	f.lastErr.Store(&err)
	return err
}

func (f *Feed) update(ctx context.Context) error {
	if f.Client == nil {
		return errNoClient
	}
	cur := f.current()
	goog, err := f.fetch(ctx, "goog.json", f.GoogURL, defaultGoogURL)
	if err != nil {
		return err
	}
	gt, err := syncToken("goog.json", goog)
	if err != nil {
		return err
	}
	if gt == cur.goog {
		return nil
	}
	if gt < cur.goog {
		return fmt.Errorf("googlefeed: goog.json: syncToken %d is older than the one held, %d", gt, cur.goog)
	}
	cloud, err := f.fetch(ctx, "cloud.json", f.CloudURL, defaultCloudURL)
	if err != nil {
		return err
	}
	ct, err := syncToken("cloud.json", cloud)
	if err != nil {
		return err
	}
	if ct < gt {
		return fmt.Errorf("googlefeed: cloud.json: syncToken %d is older than goog.json's, %d", ct, gt)
	}
	g, err := sockets.ParseGoogleRanges(goog, cloud)
	if err != nil {
		return fmt.Errorf("googlefeed: %w", err)
	}
	next := &held{ranges: g, goog: gt, cloud: ct, created: g.Created}
	next.v4, next.v6 = count(g)
	if next.v4 == 0 && next.v6 == 0 {
		return errors.New("googlefeed: goog.json minus cloud.json leaves no ranges")
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	cur = f.current() // another update may have installed newer files
	switch {
	case gt == cur.goog:
		return nil
	case gt < cur.goog:
		return fmt.Errorf("googlefeed: goog.json: syncToken %d is older than the one held, %d", gt, cur.goog)
	case ct < cur.cloud:
		return fmt.Errorf("googlefeed: cloud.json: syncToken %d is older than the one held, %d", ct, cur.cloud)
	}
	if err := f.checkShrink("IPv4", cur.v4, next.v4); err != nil {
		return err
	}
	if err := f.checkShrink("IPv6", cur.v6, next.v6); err != nil {
		return err
	}
	f.cur.Store(next)
	return nil
}

// checkShrink returns an error if the addresses of one family shrink from
// was to now by more than MaxShrink.
func (f *Feed) checkShrink(family string, was, now float64) error {
	limit := f.MaxShrink
	if limit <= 0 {
		limit = defaultMaxShrink
	}
	if was == 0 || now >= was {
		return nil
	}
	if shrink := (was - now) / was; shrink > limit {
		return fmt.Errorf("googlefeed: update takes away %.1f%% of the %s addresses held, more than MaxShrink (%g)", 100*shrink, family, limit)
	}
	return nil
}

// fetch GETs a file and returns its body, at most maxFile bytes. name
// names it in errors; url is the Feed's field, def its default.
func (f *Feed) fetch(ctx context.Context, name, url, def string) ([]byte, error) {
	if url == "" {
		url = def
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("googlefeed: %s: %w", name, err)
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("googlefeed: %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("googlefeed: %s: GET %s: %s", name, req.URL.Redacted(), resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("googlefeed: %s: %w", name, err)
	}
	if len(body) > maxFile {
		return nil, fmt.Errorf("googlefeed: %s: body larger than 16 MiB", name)
	}
	return body, nil
}

// syncToken reads a document's syncToken as a number.
func syncToken(name string, doc []byte) (uint64, error) {
	var d struct {
		SyncToken string `json:"syncToken"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return 0, fmt.Errorf("googlefeed: %s: %w", name, err)
	}
	n, err := strconv.ParseUint(d.SyncToken, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("googlefeed: %s: syncToken %q is not a number", name, d.SyncToken)
	}
	return n, nil
}

// count returns the number of IPv4 and of IPv6 addresses g covers. The
// prefixes of a goog.json minus cloud.json never overlap.
func count(g *sockets.GoogleRanges) (v4, v6 float64) {
	for _, p := range g.Prefixes() {
		if p.Addr().Is4() {
			v4 += math.Ldexp(1, 32-p.Bits())
		} else {
			v6 += math.Ldexp(1, 128-p.Bits())
		}
	}
	return v4, v6
}
