package transport_test

import (
	"context"
	"fmt"
	"net/http"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
)

// A transport that records OpenTelemetry metrics and hands every refusal
// to an audit hook. The application brings the SDK; here a manual reader
// collects what a refused request recorded.
func ExampleConfig_metrics() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	rt, err := transport.New(transport.Config{
		Backend: transport.Sockets,
		Dialer:  sockets.Dialer{MeterProvider: mp},
		OnRefusal: func(ctx context.Context, err *sockets.DeniedError) {
			// An audit log line: the rule and the host as written.
			fmt.Printf("audit: refused %s (rule %s)\n", err.Host, err.Rule.Code())
		},
	})
	if err != nil {
		panic(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://10.0.0.1/", nil)
	if _, err := rt.RoundTrip(req); err == nil {
		panic("a private address was reached")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "outbound.refusals" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				rule, _ := dp.Attributes.Value("outbound.rule")
				fmt.Printf("%s{outbound.rule=%s} %d\n", m.Name, rule.AsString(), dp.Value)
			}
		}
	}
	// Output:
	// audit: refused 10.0.0.1 (rule private)
	// outbound.refusals{outbound.rule=private} 1
}
