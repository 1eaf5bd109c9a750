package sockets_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/outbound-go/outbound/internal/metrictest"
	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
)

// sdkMetrics returns an SDK MeterProvider and the collector of what it
// recorded (see metrictest.NewProvider).
func sdkMetrics(t *testing.T) (metric.MeterProvider, func() map[string]map[string]int64) {
	return metrictest.NewProvider(t, obs.ScopeName)
}

// loopbackDialer allows loopback, which the default policy refuses, and
// records its metrics on mp.
func loopbackDialer(mp metric.MeterProvider) *sockets.Dialer {
	return &sockets.Dialer{
		Policy:        sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.0/8")),
		MeterProvider: mp,
	}
}

// echoOnce accepts one connection, reads 5 bytes and answers 3.
func echoOnce(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, 5)); err == nil {
			c.Write([]byte("abc"))
		}
	}()
	return ln.Addr().String()
}

// TestMetricsNoWrapperWhenDisabled: with a no-op MeterProvider, or the
// global one with no SDK set, or none (nil), DialContext returns the
// connection as made.
func TestMetricsNoWrapperWhenDisabled(t *testing.T) {
	for name, mp := range map[string]metric.MeterProvider{"global": otel.GetMeterProvider(), "noop": noop.NewMeterProvider(), "nil": nil} {
		t.Run(name, func(t *testing.T) {
			c, err := loopbackDialer(mp).DialContext(context.Background(), "tcp", echoOnce(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, ok := c.(*net.TCPConn); !ok {
				t.Errorf("DialContext returned a %T, want the *net.TCPConn as made", c)
			}
		})
	}
}

// TestMetricsBytesAndConnect: a checked connection's bytes are counted
// exactly, in both directions, and its connect is recorded.
func TestMetricsBytesAndConnect(t *testing.T) {
	mp, collect := sdkMetrics(t)
	c, err := loopbackDialer(mp).DialContext(context.Background(), "tcp", echoOnce(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	got := collect()
	moved := got[obs.MetricIO]
	if moved["network.io.direction=transmit,network.transport=tcp"] != 5 || moved["network.io.direction=receive,network.transport=tcp"] != 3 || len(moved) != 2 {
		t.Errorf("%s = %v, want 5 transmitted and 3 received", obs.MetricIO, moved)
	}
	conn := got[obs.MetricConnectDuration]
	if conn["network.transport=tcp,network.type=ipv4"] != 1 || len(conn) != 1 {
		t.Errorf("%s = %v, want one IPv4 connect", obs.MetricConnectDuration, conn)
	}
	if n := got[obs.MetricDNSLookupDuration]; len(n) != 0 {
		t.Errorf("%s = %v, want no lookup for an IP literal", obs.MetricDNSLookupDuration, n)
	}
}

// TestMetricsConnectRefused: a connect the peer refuses is recorded with
// error.type connection_refused.
func TestMetricsConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	mp, collect := sdkMetrics(t)
	if _, err := loopbackDialer(mp).DialContext(context.Background(), "tcp", addr); err == nil {
		t.Fatal("dial of a closed port succeeded")
	}
	conn := collect()[obs.MetricConnectDuration]
	if conn["error.type=connection_refused,network.transport=tcp,network.type=ipv4"] != 1 || len(conn) != 1 {
		t.Errorf("%s = %v, want one refused connect", obs.MetricConnectDuration, conn)
	}
}

// TestMetricsDialRefusals: each dial the policy refuses counts once, by
// rule and transport.
func TestMetricsDialRefusals(t *testing.T) {
	mp, collect := sdkMetrics(t)
	d := &sockets.Dialer{MeterProvider: mp}
	ctx := context.Background()
	for _, c := range []struct{ network, addr string }{
		{"tcp", "10.0.0.1:80"},
		{"udp", "192.168.1.1:53"},
		{"tcp", "203.0.113.9:25"},
	} {
		if _, err := d.DialContext(ctx, c.network, c.addr); !errors.Is(err, sockets.ErrDenied) {
			t.Fatalf("DialContext(%s, %s) = %v, want a refusal", c.network, c.addr, err)
		}
	}
	if _, err := d.DialContext(ctx, "tcp", "10.1.2.3:443"); !errors.Is(err, sockets.ErrDenied) {
		t.Fatalf("DialContext = %v, want a refusal", err)
	}
	got := collect()
	want := map[string]int64{
		"network.transport=tcp,outbound.rule=private":   2,
		"network.transport=udp,outbound.rule=private":   1,
		"network.transport=tcp,outbound.rule=smtp_port": 1,
	}
	ref := got[obs.MetricRefusals]
	if len(ref) != len(want) {
		t.Errorf("%s = %v, want %v", obs.MetricRefusals, ref, want)
	}
	for k, v := range want {
		if ref[k] != v {
			t.Errorf("%s{%s} = %d, want %d", obs.MetricRefusals, k, ref[k], v)
		}
	}
	if n := got[obs.MetricConnectDuration]; len(n) != 0 {
		t.Errorf("%s = %v, want no connect attempt", obs.MetricConnectDuration, n)
	}
}
