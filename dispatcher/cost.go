package dispatcher

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync/atomic"

	"github.com/prometheus-lambda/prometheus-lambda/telemetryapi"
)

// Prices are Lambda's on-demand prices in US dollars, used to estimate the
// cost of each invocation from its platform.report.
type Prices struct {
	PerGBSecond float64 // USD per GB-second: billed duration × configured memory
	PerRequest  float64 // USD per request
}

// Default prices, from the AWS Lambda pricing page
// (https://aws.amazon.com/lambda/pricing/, US East (N. Virginia)): $0.20 per
// million requests on both architectures; duration at the first on-demand
// tier, $0.0000166667 per GB-second on x86 (first 6 billion GB-seconds a
// month) and $0.0000133334 on Arm (first 7.5 billion). Not modelled: the
// free tier (1M requests and 400,000 GB-seconds a month, per account), the
// cheaper tiers beyond, other regions' prices, Savings Plans, Provisioned
// Concurrency, ephemeral storage beyond 512 MB, SnapStart cache and restore
// charges, Lambda Managed Instances' EC2-based pricing, data transfer.
const (
	defaultPricePerRequest         = 0.20 / 1e6
	defaultX86PricePerGBSecond     = 0.0000166667
	defaultArm64PricePerGBSecond   = 0.0000133334
	environmentPricePerGBSecond    = "PRICE_PER_GB_SECOND"
	environmentPricePerMillionReqs = "PRICE_PER_MILLION_REQUESTS"
)

// Architecture returns the Lambda name of the architecture this binary was
// built for, which is the function's: a layer's extension runs natively.
// "x86_64" or "arm64" (other GOARCH values are returned as they are).
func Architecture() string { return lambdaArchitecture(runtime.GOARCH) }

func lambdaArchitecture(goarch string) string {
	if goarch == "amd64" {
		return "x86_64"
	}
	return goarch
}

// DefaultPrices returns the default prices for a Lambda architecture:
// "arm64" or "x86_64" ("amd64" is accepted too; anything else gets x86's).
func DefaultPrices(architecture string) Prices {
	if architecture == "arm64" {
		return Prices{PerGBSecond: defaultArm64PricePerGBSecond, PerRequest: defaultPricePerRequest}
	}
	return Prices{PerGBSecond: defaultX86PricePerGBSecond, PerRequest: defaultPricePerRequest}
}

// PriceOverrides are prices set in the environment; a nil field keeps the
// default.
type PriceOverrides struct {
	PerGBSecond *float64 // PRICE_PER_GB_SECOND, USD
	PerRequest  *float64 // PRICE_PER_MILLION_REQUESTS / 1,000,000, USD
}

// ParsePriceOverrides reads PRICE_PER_GB_SECOND and
// PRICE_PER_MILLION_REQUESTS (US dollars, decimal numbers ≥ 0); unset or
// empty variables are no override. Every problem is reported, joined.
func ParsePriceOverrides(getenv func(string) string) (PriceOverrides, error) {
	var o PriceOverrides
	var errs []error
	parse := func(name string) *float64 {
		v := getenv(name)
		if v == "" {
			return nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			errs = append(errs, fmt.Errorf("%s %q is not a price in US dollars (a number ≥ 0, e.g. 0.0000166667)", name, v))
			return nil
		}
		return &f
	}
	o.PerGBSecond = parse(environmentPricePerGBSecond)
	if perMillion := parse(environmentPricePerMillionReqs); perMillion != nil {
		perRequest := *perMillion / 1e6
		o.PerRequest = &perRequest
	}
	return o, errors.Join(errs...)
}

// Apply returns p with the overridden prices replaced.
func (o PriceOverrides) Apply(p Prices) Prices {
	if o.PerGBSecond != nil {
		p.PerGBSecond = *o.PerGBSecond
	}
	if o.PerRequest != nil {
		p.PerRequest = *o.PerRequest
	}
	return p
}

// SetPrices sets the prices the estimated cost uses from now on (the
// default: DefaultPrices(Architecture())). A negative, infinite or NaN
// price is ignored: that price stays as it was.
func (m *Metrics) SetPrices(p Prices) {
	cur := m.Prices()
	if validPrice(p.PerGBSecond) {
		cur.PerGBSecond = p.PerGBSecond
	}
	if validPrice(p.PerRequest) {
		cur.PerRequest = p.PerRequest
	}
	m.platform.cost.prices.Store(&cur)
}

// Prices returns the prices the estimated cost uses.
func (m *Metrics) Prices() Prices { return *m.platform.cost.prices.Load() }

func validPrice(f float64) bool { return f >= 0 && !math.IsInf(f, 0) }

// costMetrics estimate what each invocation costs from its platform.report.
type costMetrics struct {
	gbSeconds *series
	usd       *series
	prices    atomic.Pointer[Prices]
}

func newCostMetrics(r *registry, architecture string) *costMetrics {
	c := &costMetrics{
		gbSeconds: r.counterVec("aws_lambda_billed_gb_seconds_total",
			"Billed compute: platform.report billedDurationMs / 1000 × memorySizeMB / 1024, summed over invocations.",
			"architecture").with(architecture),
		usd: r.counterVec("aws_lambda_estimated_cost_usd_total",
			"Estimated on-demand cost in US dollars: billed GB-seconds × price per GB-second + one request × price per request per platform.report; first pricing tier, no free tier.",
			"architecture").with(architecture),
	}
	p := DefaultPrices(architecture)
	c.prices.Store(&p)
	return c
}

// record adds the GB-seconds and the estimated cost of one invocation.
// Every platform.report is a billed request; without a memory size (Lambda
// Managed Instances) or a billed duration it adds no GB-seconds.
func (c *costMetrics) record(r *telemetryapi.PlatformReport) {
	gbs := r.Metrics.BilledDurationMs / 1000 * r.Metrics.MemorySizeMB / 1024
	if !r.Metrics.HasBilledDuration() || !r.Metrics.HasMemorySize() || !(gbs > 0) || math.IsInf(gbs, 0) {
		gbs = 0
	}
	p := c.prices.Load()
	if gbs > 0 {
		c.gbSeconds.Add(gbs)
	}
	if usd := gbs*p.PerGBSecond + p.PerRequest; usd > 0 {
		c.usd.Add(usd)
	}
}
