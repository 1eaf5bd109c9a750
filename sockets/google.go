package sockets

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// googJSON is Google's published list of every IP range it uses
// (https://www.gstatic.com/ipranges/goog.json), and cloudJSON the list of
// the ranges it hands to Google Cloud customers
// (https://www.gstatic.com/ipranges/cloud.json), from Google's sync of
// 2024-04-25 (syncToken 1714053903689).
//
//go:embed goog.json
var googJSON []byte

//go:embed cloud.json
var cloudJSON []byte

// GoogleRanges is a parsed set of Google's IP ranges: the ranges of
// Google's services, a goog.json minus the cloud.json of the same sync
// ([ParseGoogleRanges]; what [DefaultPolicy] refuses, from the embedded
// pair), or the whole of a goog.json ([EmbeddedGoogleRanges], or
// ParseGoogleRanges with no cloud.json). Google publishes both files in one
// format (syncToken, creationTime, prefixes with ipv4Prefix or ipv6Prefix;
// cloud.json adds service and scope, which are not read). Its ranges are
// immutable, and it is safe for concurrent use; the date fields describe
// the files only and play no part in a check. A nil *GoogleRanges holds
// nothing.
type GoogleRanges struct {
	// Created is the creationTime of the goog.json, in UTC.
	Created time.Time
	// SyncToken is the goog.json's syncToken.
	SyncToken string
	// CloudCreated is the creationTime, in UTC, of the cloud.json whose
	// ranges were taken away; zero when none was.
	CloudCreated time.Time
	// CloudSyncToken is that cloud.json's syncToken; empty when none was
	// taken away.
	CloudSyncToken string

	set      *addrSet // nil in the zero GoogleRanges, which holds nothing
	prefixes []netip.Prefix
}

// EmbeddedGoogleRanges returns the whole of the goog.json that ships with
// the package, from Google's sync of 2024-04-25 (Created says so): every
// range Google uses, Google Cloud customers' included. Refusing it is the
// broadest reading of the Google rule:
//
//	p := sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges())
//
// [DefaultPolicy] refuses less: the ranges of Google's services, the
// embedded goog.json minus the embedded cloud.json (which
// DefaultPolicy().GoogleRanges() returns). Addresses Google Cloud lends its
// customers are public hosts like any other. Google changes its ranges, so
// long-running deployments should install newer files (see
// [ParseGoogleRanges]).
//
// The file is parsed once, on first use; each call returns a new
// *GoogleRanges that shares the parsed, immutable set of ranges, so a caller
// that changes the Created or SyncToken of its copy changes no one else's.
// It is safe for concurrent use.
func EmbeddedGoogleRanges() *GoogleRanges {
	g := *embeddedGoogle()
	return &g
}

// embeddedGoogle and embeddedServices are the parsed embedded snapshots,
// the whole goog.json and goog.json minus cloud.json, shared by every
// [DefaultPolicy]; they must never be handed out, since their exported
// fields could then be changed.
var (
	embeddedGoogle = sync.OnceValue(func() *GoogleRanges {
		return mustParseEmbedded(googJSON, "google ranges")
	})
	embeddedServices = sync.OnceValue(func() *GoogleRanges {
		return googleServices(embeddedGoogle(), mustParseEmbedded(cloudJSON, "cloud ranges"))
	})
)

func mustParseEmbedded(data []byte, what string) *GoogleRanges {
	g, err := parseRanges(data, what)
	if err != nil {
		panic("sockets: embedded " + err.Error())
	}
	return g
}

// maxGoogleFile bounds the size of a ranges file.
const maxGoogleFile = 16 << 20

// ParseGoogleRanges reads a goog.json document, goog, and the cloud.json
// document of the same sync, cloud, and returns the ranges of Google's
// services: the addresses in goog that are not in cloud, the difference
// Google documents as the way to find them. The difference is exact,
// address by address: a cloud.json prefix that only partly overlaps a
// goog.json prefix takes away just the part it covers. The result keeps
// goog's creationTime and syncToken in Created and SyncToken and cloud's in
// CloudCreated and CloudSyncToken, so that a caller can see whether the two
// files come from the same sync; ParseGoogleRanges does not require it.
// Install the result with [Policy.WithGoogleRanges].
//
// A nil cloud takes nothing away: the result is the whole of goog, the
// broadest reading of the Google rule (see [EmbeddedGoogleRanges]).
//
// A document without prefixes, with an unparseable prefix or creation time,
// or larger than 16 MiB is an error, which names the document ("google
// ranges" or "cloud ranges"). Google publishes the files at
// https://www.gstatic.com/ipranges/goog.json and
// https://www.gstatic.com/ipranges/cloud.json.
//
// Prefixes returns, for the whole of goog, its prefixes in file order, and
// for a difference the fewest prefixes that cover it exactly, in address
// order.
func ParseGoogleRanges(goog, cloud []byte) (*GoogleRanges, error) {
	g, err := parseRanges(goog, "google ranges")
	if err != nil {
		return nil, err
	}
	if cloud == nil {
		return g, nil
	}
	c, err := parseRanges(cloud, "cloud ranges")
	if err != nil {
		return nil, err
	}
	return googleServices(g, c), nil
}

// parseRanges reads a goog.json or cloud.json document; what names it in
// errors ("google ranges", "cloud ranges").
func parseRanges(data []byte, what string) (*GoogleRanges, error) {
	var doc struct {
		SyncToken    string `json:"syncToken"`
		CreationTime string `json:"creationTime"`
		Prefixes     []struct {
			IPv4 string `json:"ipv4Prefix"`
			IPv6 string `json:"ipv6Prefix"`
		} `json:"prefixes"`
	}
	if len(data) > maxGoogleFile {
		return nil, fmt.Errorf("sockets: %s: file larger than 16 MiB", what)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("sockets: %s: %w", what, err)
	}
	g := &GoogleRanges{SyncToken: doc.SyncToken}
	if doc.CreationTime != "" {
		t, err := time.Parse("2006-01-02T15:04:05.999999999", doc.CreationTime)
		if err != nil {
			return nil, fmt.Errorf("sockets: %s: creationTime: %w", what, err)
		}
		g.Created = t.UTC()
	}
	for i, p := range doc.Prefixes {
		s, want6 := p.IPv4, false
		if s == "" {
			s, want6 = p.IPv6, true
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil || pfx.Addr().Is6() != want6 || pfx.Addr().Is4In6() {
			return nil, fmt.Errorf("sockets: %s: prefix %d: invalid %q", what, i, s)
		}
		pfx = pfx.Masked()
		g.prefixes = append(g.prefixes, pfx)
	}
	if len(g.prefixes) == 0 {
		return nil, fmt.Errorf("sockets: %s: no prefixes", what)
	}
	g.set = newAddrSet(g.prefixes)
	return g, nil
}

// googleServices returns the addresses in goog that are not in cloud, with
// goog's Created and SyncToken and cloud's as CloudCreated and
// CloudSyncToken. Both are parsed documents (never nil, never empty).
// goog and cloud are not changed.
func googleServices(goog, cloud *GoogleRanges) *GoogleRanges {
	out := *goog
	out.CloudCreated, out.CloudSyncToken = cloud.Created, cloud.SyncToken
	out.set = goog.set.minus(cloud.set)
	out.prefixes = out.set.prefixes()
	return &out
}

// Contains reports whether a is inside one of the ranges. IPv4-mapped IPv6
// addresses are unmapped first; zoned addresses are never contained. The
// zero GoogleRanges, and a nil one, contain nothing.
func (g *GoogleRanges) Contains(a netip.Addr) bool {
	return g != nil && g.set.contains(a.Unmap())
}

// Prefixes returns a copy of the prefixes: for the whole of a goog.json,
// in file order; for the ranges of Google's services (goog.json minus
// cloud.json), the fewest prefixes that cover the difference exactly, in
// address order. The zero GoogleRanges, and a nil one, have none: Prefixes
// returns nil.
func (g *GoogleRanges) Prefixes() []netip.Prefix {
	if g == nil {
		return nil
	}
	return append([]netip.Prefix(nil), g.prefixes...)
}
