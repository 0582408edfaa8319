package dispatcher

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
)

// CredentialsFunc returns basic-auth credentials for a push.
type CredentialsFunc func(ctx context.Context) (username, password string, err error)

// Pusher pushes what changed in a Gatherer since its last successful push,
// with client_golang's push package as a POST (Add) to
// <url>/metrics/job/<job>, protobuf-delimited.
//
// A push that fails leaves the acknowledged snapshot where it was, so its
// increments travel again with the next push: nothing is lost, and nothing
// the gateway rejected is counted. Not safe for concurrent Push calls.
type Pusher struct {
	url         string
	job         string
	gatherer    prometheus.Gatherer
	client      push.HTTPDoer
	credentials CredentialsFunc
	acked       snapshot
}

// NewPusher returns a Pusher of g's metrics to the gateway at url under the
// grouping key job=<job>. client may be nil (http.DefaultClient; the caller
// bounds each push with its context); credentials may be nil (no auth).
func NewPusher(url, job string, g prometheus.Gatherer, client push.HTTPDoer, credentials CredentialsFunc) *Pusher {
	if client == nil {
		client = http.DefaultClient
	}
	return &Pusher{url: url, job: job, gatherer: g, client: client, credentials: credentials, acked: snapshot{}}
}

// Push sends the deltas since the last successful push. It reports whether
// anything was sent; with nothing changed it sends nothing and returns
// (false, nil).
func (p *Pusher) Push(ctx context.Context) (bool, error) {
	families, err := p.gatherer.Gather()
	if err != nil {
		return false, fmt.Errorf("gather metrics: %w", err)
	}
	body, next := deltas(families, p.acked)
	if len(body) == 0 {
		p.acked = next
		return false, nil
	}
	pusher := push.New(p.url, p.job).Gatherer(staticGatherer(body)).Client(p.client)
	if p.credentials != nil {
		user, pass, err := p.credentials(ctx)
		if err != nil {
			return false, fmt.Errorf("credentials for the push: %w", err)
		}
		pusher = pusher.BasicAuth(user, pass)
	}
	if err := pusher.AddContext(ctx); err != nil {
		return false, fmt.Errorf("push to %s: %w", p.url, err)
	}
	p.acked = next
	return true, nil
}

// staticGatherer serves a fixed set of families.
type staticGatherer []*dto.MetricFamily

func (g staticGatherer) Gather() ([]*dto.MetricFamily, error) { return g, nil }
