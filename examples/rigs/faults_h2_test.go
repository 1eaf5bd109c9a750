package rigs_test

// Raw HTTP/2 servers that misbehave, driven frame by frame with
// golang.org/x/net/http2's Framer over TLS with ALPN "h2".

import (
	"bytes"
	"io"
	"net"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Mode is how an h2Server misbehaves once it has read the request.
type h2Mode int

const (
	// h2GoAwayMidStream sends the response headers and part of the body,
	// then GOAWAY with INTERNAL_ERROR, and closes the connection.
	h2GoAwayMidStream h2Mode = iota
	// h2ResetStream sends the response headers and part of the body, then
	// RST_STREAM with INTERNAL_ERROR, and keeps the connection open.
	h2ResetStream
	// h2OversizedHeaders sends a response header block that decodes to
	// more than the client's advertised header list limit (10 MiB by
	// default): one 4,000-byte field added to the HPACK dynamic table,
	// then referenced 3,000 times by its one-byte index. A few kilobytes
	// on the wire, 12 MB decoded.
	h2OversizedHeaders
	// h2SettingsFlood sends 20,000 SETTINGS frames, each of which the
	// client must acknowledge, then a normal response ("ok").
	h2SettingsFlood
)

// settingsFlood is the number of SETTINGS frames of h2SettingsFlood.
const settingsFlood = 20000

// serveH2 speaks server-side HTTP/2 on c, a TLS connection that negotiated
// "h2", and answers every request as mode says. It returns when the
// connection is closed (by the client, or by the server shutting down), or
// at once after a GOAWAY.
func serveH2(c net.Conn, mode h2Mode) {
	defer c.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	fr := http2.NewFramer(c, c)
	if fr.WriteSettings() != nil {
		return
	}
	// A reader goroutine reads the client's frames and passes on what
	// needs an answer: its SETTINGS (to acknowledge) and the streams it
	// opens. Everything else (acknowledgements, window updates, resets)
	// is dropped. It never waits on the writer for long, so that neither
	// side blocks on a full socket buffer; it ends with the connection.
	type event struct {
		settings bool
		stream   uint32
	}
	events := make(chan event, 64)
	go func() {
		defer close(events)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					events <- event{settings: true}
				}
			case *http2.HeadersFrame:
				events <- event{stream: f.StreamID}
			}
		}
	}()
	defer func() {
		c.Close()
		for range events { // until the reader has returned
		}
	}()

	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	headers := func(fields ...string) []byte {
		hbuf.Reset()
		for i := 0; i+1 < len(fields); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(hbuf.Bytes())
	}
	for ev := range events {
		if ev.settings {
			if fr.WriteSettingsAck() != nil {
				return
			}
			continue
		}
		stream := ev.stream
		switch mode {
		case h2GoAwayMidStream:
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: headers(":status", "200", "content-length", "1000"), EndHeaders: true})
			fr.WriteData(stream, false, []byte("partial"))
			fr.WriteGoAway(stream, http2.ErrCodeInternal, []byte("fault: goaway mid-stream"))
			return // and close the connection
		case h2ResetStream:
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: headers(":status", "200", "content-length", "1000"), EndHeaders: true})
			fr.WriteData(stream, false, []byte("partial"))
			fr.WriteRSTStream(stream, http2.ErrCodeInternal)
		case h2OversizedHeaders:
			block := headers(":status", "200")
			// A literal field with incremental indexing (RFC 7541,
			// section 6.2.1): it enters the dynamic table at index 62.
			block = append(block, headers("x-big", strings.Repeat("b", 4000))...)
			// The indexed field 62 (RFC 7541, section 6.1): one byte,
			// 0x80|62.
			block = append(block, bytes.Repeat([]byte{0x80 | 62}, 3000)...)
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block, EndHeaders: true, EndStream: true})
		case h2SettingsFlood:
			for range settingsFlood {
				if fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}) != nil {
					return
				}
			}
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: headers(":status", "200", "content-length", "2"), EndHeaders: true})
			fr.WriteData(stream, true, []byte("ok"))
		}
	}
}
