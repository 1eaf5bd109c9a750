package sockets

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"go4.org/netipx"
)

// googJSON is Google's published list of every IP range it uses
// (https://www.gstatic.com/ipranges/goog.json), and cloudJSON the list of
// the ranges it hands to Google Cloud customers
// (https://www.gstatic.com/ipranges/cloud.json), from the same sync: see
// [EmbeddedGoogleServices] for the dates.
//
//go:embed goog.json
var googJSON []byte

//go:embed cloud.json
var cloudJSON []byte

// GoogleRanges is a parsed set of Google's IP ranges: the whole of a
// goog.json file ([ParseGoogleRanges]), a cloud.json file, which has the same
// format, or the ranges of Google's own services, goog.json minus cloud.json
// ([GoogleServices]). Google publishes both files in one format (syncToken,
// creationTime, prefixes with ipv4Prefix or ipv6Prefix; cloud.json adds
// service and scope, which are not read). Its ranges are immutable, and it is
// safe for concurrent use; the date fields describe the files only and play
// no part in a check. A nil *GoogleRanges holds nothing.
type GoogleRanges struct {
	// Created is the creationTime of the file (goog.json), in UTC.
	Created time.Time
	// SyncToken is the file's syncToken.
	SyncToken string
	// CloudCreated is the creationTime, in UTC, of the cloud.json whose
	// ranges [GoogleServices] took away; zero for a parsed file.
	CloudCreated time.Time
	// CloudSyncToken is that cloud.json's syncToken; empty for a parsed
	// file.
	CloudSyncToken string

	set      *addrSet // nil in the zero GoogleRanges, which holds nothing
	prefixes []netip.Prefix
}

// EmbeddedGoogleRanges returns the whole of the goog.json that ships with
// the package: every range Google uses, Google Cloud customers' included.
// Refusing it is the broadest reading of the Google rule:
//
//	p := sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges())
//
// [DefaultPolicy] refuses [EmbeddedGoogleServices] instead. Its Created
// field says how old the snapshot is; Google changes its ranges, so
// long-running deployments should load newer files (see
// [LoadGoogleServices]).
//
// The file is parsed once, on first use; each call returns a new
// *GoogleRanges that shares the parsed, immutable set of ranges, so a caller
// that changes the Created or SyncToken of its copy changes no one else's.
// It is safe for concurrent use.
func EmbeddedGoogleRanges() *GoogleRanges {
	g := *embeddedGoogle()
	return &g
}

// EmbeddedGoogleServices returns the ranges of Google's own services from
// the snapshot that ships with the package: its goog.json minus its
// cloud.json, both from Google's sync of 2024-04-25 (syncToken
// 1714053903689; Created and CloudCreated say so). These are the ranges
// [DefaultPolicy] refuses. Google documents this difference as the way to
// find the addresses of its services; addresses Google Cloud lends its
// customers are public hosts like any other. Google changes its ranges, so
// long-running deployments should load a newer pair with
// [LoadGoogleServices] and install it with [Policy.WithGoogleRanges].
//
// Like [EmbeddedGoogleRanges], the files are parsed once, on first use, and
// each call returns a new *GoogleRanges sharing the immutable set. It is safe
// for concurrent use.
func EmbeddedGoogleServices() *GoogleRanges {
	g := *embeddedServices()
	return &g
}

// embeddedGoogle and embeddedServices are the parsed embedded snapshots,
// shared by every [DefaultPolicy]; they must never be handed out, since
// their exported fields could then be changed.
var (
	embeddedGoogle = sync.OnceValue(func() *GoogleRanges {
		return mustParseEmbedded(googJSON, "google ranges")
	})
	embeddedServices = sync.OnceValue(func() *GoogleRanges {
		return GoogleServices(embeddedGoogle(), mustParseEmbedded(cloudJSON, "cloud ranges"))
	})
)

func mustParseEmbedded(data []byte, what string) *GoogleRanges {
	g, err := parseRanges(bytes.NewReader(data), what)
	if err != nil {
		panic("sockets: embedded " + err.Error())
	}
	return g
}

// maxGoogleFile bounds how much of a ranges file is read.
const maxGoogleFile = 16 << 20

// ParseGoogleRanges reads a goog.json document from r: the whole of it,
// Google Cloud customers' ranges included (see [GoogleServices] for the
// ranges of Google's services). It reads a cloud.json document too, which
// has the same format. A document without prefixes, with an unparseable
// prefix or creation time, or larger than 16 MiB is an error.
func ParseGoogleRanges(r io.Reader) (*GoogleRanges, error) {
	return parseRanges(r, "google ranges")
}

// parseRanges reads a goog.json or cloud.json document; what names it in
// errors ("google ranges", "cloud ranges").
func parseRanges(r io.Reader, what string) (*GoogleRanges, error) {
	var doc struct {
		SyncToken    string `json:"syncToken"`
		CreationTime string `json:"creationTime"`
		Prefixes     []struct {
			IPv4 string `json:"ipv4Prefix"`
			IPv6 string `json:"ipv6Prefix"`
		} `json:"prefixes"`
	}
	data, err := io.ReadAll(io.LimitReader(r, maxGoogleFile+1))
	if err != nil {
		return nil, fmt.Errorf("sockets: reading %s: %w", what, err)
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
	var b netipx.IPSetBuilder
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
		b.AddPrefix(pfx)
	}
	if len(g.prefixes) == 0 {
		return nil, fmt.Errorf("sockets: %s: no prefixes", what)
	}
	set, err := b.IPSet()
	if err != nil {
		return nil, fmt.Errorf("sockets: %s: %w", what, err)
	}
	g.set = newAddrSet(set)
	return g, nil
}

// LoadGoogleRanges reads a goog.json file from path; see [ParseGoogleRanges].
func LoadGoogleRanges(path string) (*GoogleRanges, error) {
	return loadRanges(path, "google ranges")
}

func loadRanges(path, what string) (*GoogleRanges, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sockets: %s: %w", what, err)
	}
	defer f.Close()
	return parseRanges(f, what)
}

// GoogleServices returns the ranges of Google's services: the addresses in
// goog (a goog.json) that are not in cloud (the cloud.json of the same
// sync), the difference Google documents for this purpose. The difference
// is exact, address by address: a cloud.json prefix that only partly
// overlaps a goog.json prefix takes away just the part it covers. The result
// keeps goog's Created and SyncToken and records cloud's in CloudCreated
// and CloudSyncToken, so that a caller can see whether the two files come
// from the same sync; GoogleServices does not require it.
//
// A nil cloud takes nothing away (the result holds the whole of goog, with
// empty Cloud fields); a nil goog holds nothing, so neither does the
// result. The result is never nil, so that passing it to
// [Policy.WithGoogleRanges] never turns the Google rule off. goog and cloud
// are not changed.
func GoogleServices(goog, cloud *GoogleRanges) *GoogleRanges {
	out := &GoogleRanges{}
	if goog != nil {
		*out = *goog
	}
	if cloud == nil {
		return out
	}
	out.CloudCreated, out.CloudSyncToken = cloud.Created, cloud.SyncToken
	if out.set == nil {
		return out
	}
	var b netipx.IPSetBuilder
	b.AddSet(out.set.ipset)
	if cloud.set != nil {
		b.RemoveSet(cloud.set.ipset)
	}
	set, err := b.IPSet()
	if err != nil {
		// The builder reports errors only for invalid input, and both sets
		// were built from valid prefixes.
		panic("sockets: subtracting cloud ranges: " + err.Error())
	}
	out.set, out.prefixes = newAddrSet(set), set.Prefixes()
	return out
}

// ParseGoogleServices reads a goog.json document from goog and the
// cloud.json document of the same sync from cloud, and returns the ranges
// of Google's services, goog.json minus cloud.json; see [GoogleServices]
// and, for the errors, [ParseGoogleRanges] (an error in the cloud.json
// document says "cloud ranges").
func ParseGoogleServices(goog, cloud io.Reader) (*GoogleRanges, error) {
	g, err := parseRanges(goog, "google ranges")
	if err != nil {
		return nil, err
	}
	c, err := parseRanges(cloud, "cloud ranges")
	if err != nil {
		return nil, err
	}
	return GoogleServices(g, c), nil
}

// LoadGoogleServices reads a goog.json file from googPath and the cloud.json
// file of the same sync from cloudPath; see [ParseGoogleServices]. Google
// publishes them at https://www.gstatic.com/ipranges/goog.json and
// https://www.gstatic.com/ipranges/cloud.json.
func LoadGoogleServices(googPath, cloudPath string) (*GoogleRanges, error) {
	g, err := loadRanges(googPath, "google ranges")
	if err != nil {
		return nil, err
	}
	c, err := loadRanges(cloudPath, "cloud ranges")
	if err != nil {
		return nil, err
	}
	return GoogleServices(g, c), nil
}

// Contains reports whether a is inside one of the ranges. IPv4-mapped IPv6
// addresses are unmapped first; zoned addresses are never contained. The
// zero GoogleRanges, and a nil one, contain nothing.
func (g *GoogleRanges) Contains(a netip.Addr) bool {
	return g != nil && g.set.contains(a.Unmap())
}

// Prefixes returns a copy of the prefixes: for a parsed file, in file
// order; for ranges built by [GoogleServices] with a non-nil cloud, the
// fewest prefixes that cover the difference exactly, in address order. The zero
// GoogleRanges, and a nil one, have none: Prefixes returns nil.
func (g *GoogleRanges) Prefixes() []netip.Prefix {
	if g == nil {
		return nil
	}
	return append([]netip.Prefix(nil), g.prefixes...)
}
