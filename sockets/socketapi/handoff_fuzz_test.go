package socketapi_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/outbound-go/outbound/sockets/socketapi"
)

// FuzzTransfer gives the receiving side of a hand-off between processes
// arbitrary requests (the bytes that travel beside a socket). It must
// never panic; it refuses with ErrBadTransfer, or accepts a request whose
// re-encoding parses to the same thing.
func FuzzTransfer(f *testing.F) {
	peer := netip.MustParseAddrPort("93.184.216.34:443")
	good := socketapi.TransferFrame("tcp", peer, "app-a")[4:]
	f.Add(good)
	f.Add(socketapi.TransferFrame("udp6", netip.MustParseAddrPort("[2001:db8::1]:53"), "")[4:])
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{2, 1})                      // another version
	f.Add(append([]byte{1, 3}, good[2:]...)) // another kind
	f.Add(good[:len(good)-1])                // cut
	f.Add(append(bytes.Clone(good), 0))      // grown
	long := bytes.Clone(good)
	long[2] = 0xff // a network length past the end
	f.Add(long)

	f.Fuzz(func(t *testing.T, body []byte) {
		again, err := socketapi.RoundTripTransfer(body)
		if err != nil {
			if !errors.Is(err, socketapi.ErrBadTransfer) {
				t.Fatalf("refused with %v, not ErrBadTransfer", err)
			}
			return
		}
		third, err := socketapi.RoundTripTransfer(again)
		if err != nil || !bytes.Equal(third, again) {
			t.Fatalf("accepted %x; its encoding %x gives %x, %v", body, again, third, err)
		}
	})
}
