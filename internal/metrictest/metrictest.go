// Package metrictest is the module's test helper for OpenTelemetry
// metrics: a MeterProvider of the SDK with a manual reader, and a
// function that collects what it recorded in a form a test compares in
// one line. It is imported by tests only.
package metrictest

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// NewProvider returns a MeterProvider of the OpenTelemetry SDK, shut down
// at the end of the test, and a function that collects what it recorded:
// for each instrument, its total (a counter's sum, a histogram's count)
// by attribute set (see [Attrs]). An instrument on a meter other than
// scope fails the test, and so does an instrument of another kind.
func NewProvider(t testing.TB, scope string) (*sdkmetric.MeterProvider, func() map[string]map[string]int64) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return mp, func() map[string]map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		out := make(map[string]map[string]int64)
		for _, sm := range rm.ScopeMetrics {
			if sm.Scope.Name != scope {
				t.Errorf("instruments on the meter %q, want %q", sm.Scope.Name, scope)
			}
			for _, mt := range sm.Metrics {
				got := make(map[string]int64)
				switch d := mt.Data.(type) {
				case metricdata.Sum[int64]:
					for _, dp := range d.DataPoints {
						got[Attrs(dp.Attributes)] += dp.Value
					}
				case metricdata.Histogram[float64]:
					for _, dp := range d.DataPoints {
						got[Attrs(dp.Attributes)] += int64(dp.Count)
					}
				default:
					t.Fatalf("%s: unexpected %T", mt.Name, mt.Data)
				}
				out[mt.Name] = got
			}
		}
		return out
	}
}

// Attrs writes an attribute set as "key=value,key=value", in the set's
// order (sorted by key).
func Attrs(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	return strings.Join(parts, ",")
}
