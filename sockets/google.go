package sockets

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"go4.org/netipx"
)

// googJSON is Google's published list of its IP ranges (goog.json), a dated
// snapshot: see [GoogleRanges.Created].
//
//go:embed goog.json
var googJSON []byte

// GoogleRanges is a parsed copy of Google's published IP ranges, in the
// format Google publishes them (goog.json: syncToken, creationTime,
// prefixes with ipv4Prefix or ipv6Prefix). Its ranges are immutable, and it
// is safe for concurrent use; Created and SyncToken describe the file only
// and play no part in a check. A nil *GoogleRanges holds nothing.
type GoogleRanges struct {
	// Created is the creationTime of the file, in UTC.
	Created time.Time
	// SyncToken is the file's syncToken.
	SyncToken string

	set      *addrSet // nil in the zero GoogleRanges, which holds nothing
	prefixes []netip.Prefix
}

// EmbeddedGoogleRanges returns the snapshot of Google's ranges that ships
// with the package. Its Created field says how old it is; Google changes its
// ranges, so long-running deployments should load a newer file with
// [LoadGoogleRanges] and install it with [Policy.WithGoogleRanges].
//
// The file is parsed once, on first use; each call returns a new
// *GoogleRanges that shares the parsed, immutable set of ranges, so a caller
// that changes the Created or SyncToken of its copy changes no one else's.
// It is safe for concurrent use.
func EmbeddedGoogleRanges() *GoogleRanges {
	g := *embeddedGoogle()
	return &g
}

// embeddedGoogle is the parsed embedded snapshot, shared by every
// [DefaultPolicy]; it must never be handed out, since its exported fields
// could then be changed.
var embeddedGoogle = sync.OnceValue(func() *GoogleRanges {
	g, err := ParseGoogleRanges(bytes.NewReader(googJSON))
	if err != nil {
		panic("sockets: embedded goog.json: " + err.Error())
	}
	return g
})

// maxGoogleFile bounds how much of a ranges file is read.
const maxGoogleFile = 16 << 20

// ParseGoogleRanges reads a goog.json document from r. A document without
// prefixes, with an unparseable prefix or creation time, or larger than
// 16 MiB is an error.
func ParseGoogleRanges(r io.Reader) (*GoogleRanges, error) {
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
		return nil, fmt.Errorf("sockets: reading google ranges: %w", err)
	}
	if len(data) > maxGoogleFile {
		return nil, errors.New("sockets: google ranges: file larger than 16 MiB")
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("sockets: google ranges: %w", err)
	}
	g := &GoogleRanges{SyncToken: doc.SyncToken}
	if doc.CreationTime != "" {
		t, err := time.Parse("2006-01-02T15:04:05.999999999", doc.CreationTime)
		if err != nil {
			return nil, fmt.Errorf("sockets: google ranges: creationTime: %w", err)
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
			return nil, fmt.Errorf("sockets: google ranges: prefix %d: invalid %q", i, s)
		}
		pfx = pfx.Masked()
		g.prefixes = append(g.prefixes, pfx)
		b.AddPrefix(pfx)
	}
	if len(g.prefixes) == 0 {
		return nil, errors.New("sockets: google ranges: no prefixes")
	}
	set, err := b.IPSet()
	if err != nil {
		return nil, fmt.Errorf("sockets: google ranges: %w", err)
	}
	g.set = newAddrSet(set)
	return g, nil
}

// LoadGoogleRanges reads a goog.json file from path; see [ParseGoogleRanges].
func LoadGoogleRanges(path string) (*GoogleRanges, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sockets: google ranges: %w", err)
	}
	defer f.Close()
	return ParseGoogleRanges(f)
}

// Contains reports whether a is inside one of the ranges. IPv4-mapped IPv6
// addresses are unmapped first; zoned addresses are never contained. The
// zero GoogleRanges, and a nil one, contain nothing.
func (g *GoogleRanges) Contains(a netip.Addr) bool {
	return g != nil && g.set.contains(a.Unmap())
}

// Prefixes returns a copy of the prefixes, in file order. The zero
// GoogleRanges, and a nil one, have none: Prefixes returns nil.
func (g *GoogleRanges) Prefixes() []netip.Prefix {
	if g == nil {
		return nil
	}
	return append([]netip.Prefix(nil), g.prefixes...)
}
