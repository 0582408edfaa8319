package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoadConfig is one closed-loop load run against one target.
type LoadConfig struct {
	BaseURL     string        // http://127.0.0.1:PORT
	Paths       []string      // grouping paths, rotated through
	Body        *Body         // the same bytes for every push
	Concurrency int           // keep-alive clients
	Warmup      time.Duration // load not recorded
	Duration    time.Duration // recorded load
	// Pace, if set, is called by each client before every request (tests).
	Pace func()
}

// Stats is what a load run measured over its recorded window.
type Stats struct {
	Pushes       int           `json:"pushes"` // 2xx answers
	Errors       int           `json:"errors"` // non-2xx answers and transport errors
	WarmupErrors int           `json:"warmup_errors"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	PushesPerSec float64       `json:"pushes_per_sec"`
	P50          time.Duration `json:"p50_ns"`
	P90          time.Duration `json:"p90_ns"`
	P99          time.Duration `json:"p99_ns"`
	Max          time.Duration `json:"max_ns"`
	// ErrorSamples holds the distinct error messages seen, with counts.
	ErrorSamples map[string]int `json:"error_samples,omitempty"`
}

// maxErrorKinds bounds how many distinct error messages are kept.
const maxErrorKinds = 10

type errorLog struct {
	mu    sync.Mutex
	kinds map[string]int
}

func (e *errorLog) add(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kinds == nil {
		e.kinds = map[string]int{}
	}
	if _, ok := e.kinds[msg]; ok || len(e.kinds) < maxErrorKinds {
		e.kinds[msg]++
	}
}

// clientResult is one client's record; only it writes to it until the end.
type clientResult struct {
	latencies    []time.Duration // successful recorded pushes
	errors       int
	warmupErrors int
	last         time.Time // when its last recorded request answered
}

// RunLoad runs cfg.Concurrency closed-loop clients, each sending the next
// push when the previous one answered, over keep-alive connections. Requests
// started during the warm-up are not recorded; every request started in the
// recorded window is, including the ones still in flight at its end, so the
// pushes and errors add up to what the server answered in that window.
func RunLoad(ctx context.Context, cfg LoadConfig) (Stats, error) {
	if cfg.Concurrency < 1 || len(cfg.Paths) == 0 || cfg.Body == nil {
		return Stats{}, fmt.Errorf("load: need at least one client, one path and a body")
	}
	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		MaxIdleConns:        2 * cfg.Concurrency,
		MaxIdleConnsPerHost: 2 * cfg.Concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	urls := make([]string, len(cfg.Paths))
	for i, p := range cfg.Paths {
		urls[i] = strings.TrimSuffix(cfg.BaseURL, "/") + p
	}
	body := cfg.Body.Bytes
	contentType := cfg.Body.ContentType

	start := time.Now()
	measureStart := start.Add(cfg.Warmup)
	end := measureStart.Add(cfg.Duration)
	expect := int(float64(cfg.Duration/time.Millisecond)*50) / cfg.Concurrency // about 50k pushes/s in all
	results := make([]clientResult, cfg.Concurrency)
	var errs errorLog
	var wg sync.WaitGroup
	for c := range cfg.Concurrency {
		res := &results[c]
		res.latencies = make([]time.Duration, 0, max(expect, 1024))
		wg.Go(func() {
			// Clients walk the grouping keys from different offsets, so
			// at any time they push to different groups, as Lambda
			// environments do.
			k := c * len(urls) / cfg.Concurrency
			for ctx.Err() == nil {
				if cfg.Pace != nil {
					cfg.Pace()
				}
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				msg := push(ctx, client, urls[k], contentType, body)
				t1 := time.Now()
				k++
				if k == len(urls) {
					k = 0
				}
				recorded := !t0.Before(measureStart)
				switch {
				case msg == "" && recorded:
					res.latencies = append(res.latencies, t1.Sub(t0))
					res.last = t1
				case msg != "" && recorded:
					res.errors++
					res.last = t1
					errs.add(msg)
				case msg != "":
					res.warmupErrors++
					errs.add("(warm-up) " + msg)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}

	var st Stats
	var all []time.Duration
	last := measureStart
	for i := range results {
		r := &results[i]
		all = append(all, r.latencies...)
		st.Errors += r.errors
		st.WarmupErrors += r.warmupErrors
		if r.last.After(last) {
			last = r.last
		}
	}
	st.Pushes = len(all)
	st.Elapsed = max(last.Sub(measureStart), cfg.Duration)
	st.PushesPerSec = float64(st.Pushes) / st.Elapsed.Seconds()
	slices.Sort(all)
	st.P50, st.P90, st.P99 = quantile(all, 0.50), quantile(all, 0.90), quantile(all, 0.99)
	if len(all) > 0 {
		st.Max = all[len(all)-1]
	}
	st.ErrorSamples = errs.kinds
	return st, nil
}

// push sends one POST and returns "" on a 2xx answer, else what went wrong.
// The body is drained so the connection is kept alive.
func push(ctx context.Context, client *http.Client, url, contentType string, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return ""
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	_, _ = io.Copy(io.Discard, resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(msg)))
}

// quantile returns the q-quantile of sorted by the nearest-rank method.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999999) - 1 // ceil(q·n) − 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// Prefill pushes the body once to every path, cfg.Concurrency at a time, so
// the target holds all the groups before it is measured.
func Prefill(ctx context.Context, cfg LoadConfig) error {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: cfg.Concurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var next atomic.Int64
	var errs errorLog
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range max(cfg.Concurrency, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(cfg.Paths) {
					return
				}
				if msg := push(ctx, client, strings.TrimSuffix(cfg.BaseURL, "/")+cfg.Paths[i], cfg.Body.ContentType, cfg.Body.Bytes); msg != "" {
					failed.Add(1)
					errs.add(msg)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d pushes failed: %v", n, len(cfg.Paths), errs.kinds)
	}
	return nil
}
