// Command function is an example Go function for the prometheus-lambda
// layer (runtime provided.al2023, arm64; template.yaml deploys it as
// ExampleFunction). It records its own metrics both ways the extension
// takes them, and the extension pushes them to the gateway next to the
// platform metrics:
//
//  1. Embedded Metric Format: one JSON line on stdout per invocation, as
//     CloudWatch specifies it (orders_placed_total and
//     processing_time_seconds at the gateway; CloudWatch extracts them as
//     usual);
//  2. a push of its own client_golang registry to the extension's local
//     push endpoint (127.0.0.1:9091, LOCAL_PUSH_ADDRESS) with the push
//     package's Add, a POST: example_orders_total and example_order_items.
//     The registry lives across warm invocations; the extension turns its
//     cumulative values into increments.
//
// A failed push is logged and never fails the invocation.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

// Order is the function's input.
type Order struct {
	ID      string `json:"id"`
	Service string `json:"service,omitempty"` // "checkout" when empty
	Items   int    `json:"items"`
}

// Receipt is its output.
type Receipt struct {
	ID    string `json:"id"`
	Items int    `json:"items"`
}

// pushJob is the job of the local pushes' grouping key. The extension keeps
// it as the label exported_job: at the gateway, job is the function's name.
const pushJob = "example-function"

// pushTimeout bounds a local push: it is a loopback request to the
// extension, which answers at once.
const pushTimeout = 500 * time.Millisecond

// app holds what lives across warm invocations of one execution
// environment.
type app struct {
	out    io.Writer    // where EMF lines go: stdout in Lambda
	pusher *push.Pusher // nil: no local pushes
	now    func() time.Time

	orders *prometheus.CounterVec
	items  prometheus.Histogram
}

func newApp(out io.Writer, pushURL string) *app {
	a := &app{
		out: out,
		now: time.Now,
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "example_orders_total",
			Help: "Orders handled by the example function.",
		}, []string{"service"}),
		items: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "example_order_items",
			Help:    "Items per order.",
			Buckets: []float64{1, 2, 5, 10, 20, 50},
		}),
	}
	if pushURL != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(a.orders, a.items)
		a.pusher = push.New(pushURL, pushJob).
			Gatherer(reg).
			Client(&http.Client{Timeout: pushTimeout})
	}
	return a
}

// localPushURL is the extension's local push endpoint: the function shares
// the extension's environment, so LOCAL_PUSH_ADDRESS says where it listens.
func localPushURL(addr string) string {
	switch addr {
	case "":
		return "http://127.0.0.1:9091"
	case "off":
		return ""
	}
	return "http://" + addr
}

func (a *app) handle(ctx context.Context, o Order) (Receipt, error) {
	start := a.now()
	if o.Items < 1 {
		return Receipt{}, errors.New("an order needs at least one item")
	}
	if o.Service == "" {
		o.Service = "checkout"
	}
	// The function's real work would be here.
	receipt := Receipt{ID: o.ID, Items: o.Items}

	// 1. EMF on stdout: the extension reads it from the Telemetry API.
	end := a.now()
	a.writeEMF(end, o.Service, end.Sub(start))

	// 2. The registry, pushed to the extension over loopback.
	a.orders.WithLabelValues(o.Service).Inc()
	a.items.Observe(float64(o.Items))
	if a.pusher != nil {
		ctx, cancel := context.WithTimeout(ctx, pushTimeout)
		defer cancel()
		if err := a.pusher.AddContext(ctx); err != nil {
			log.Printf("push metrics to the extension: %v", err)
		}
	}
	return receipt, nil
}

// The CloudWatch Embedded Metric Format: metadata under _aws, the metric
// values and dimension values as root members.
type emfDocument struct {
	AWS            emfMetadata `json:"_aws"`
	Service        string      `json:"Service"`        // dimension
	OrdersPlaced   int         `json:"OrdersPlaced"`   // Count
	ProcessingTime float64     `json:"ProcessingTime"` // Milliseconds
}

type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"` // Unix milliseconds
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// emfLine is one invocation's EMF document, without the newline.
func emfLine(t time.Time, service string, processing time.Duration) []byte {
	b, err := json.Marshal(emfDocument{
		AWS: emfMetadata{
			Timestamp: t.UnixMilli(),
			CloudWatchMetrics: []emfDirective{{
				Namespace:  "PrometheusLambdaExample",
				Dimensions: [][]string{{"Service"}},
				Metrics: []emfMetric{
					{Name: "OrdersPlaced", Unit: "Count"},
					{Name: "ProcessingTime", Unit: "Milliseconds"},
				},
			}},
		},
		Service:        service,
		OrdersPlaced:   1,
		ProcessingTime: float64(processing) / float64(time.Millisecond),
	})
	if err != nil {
		panic(err) // only strings and numbers: cannot fail
	}
	return b
}

// writeEMF writes the document as one line, in one write, so that it is
// one log record.
func (a *app) writeEMF(t time.Time, service string, processing time.Duration) {
	if _, err := a.out.Write(append(emfLine(t, service, processing), '\n')); err != nil {
		log.Printf("write EMF: %v", err)
	}
}

func main() {
	a := newApp(os.Stdout, localPushURL(os.Getenv("LOCAL_PUSH_ADDRESS")))
	lambda.Start(a.handle)
}
