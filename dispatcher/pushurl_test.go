package dispatcher

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

// seenRequest is what a gateway sees of a push, the body left out.
type seenRequest struct {
	method, path, contentType, auth string
}

// A push is the request client_golang's push.Add makes: method, escaped
// path (job@base64 for a job with "/"), Content-Type, basic auth.
func TestPushRequestMatchesClientGolang(t *testing.T) {
	var mu sync.Mutex
	var seen []seenRequest
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, seenRequest{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get("Authorization")})
		w.WriteHeader(status)
	}))
	defer srv.Close()
	creds := func(context.Context) (string, string, error) { return "user", "pa:ss", nil }

	for _, job := range []string{"fn", "my fn+1", "a/b", "ü?&=#", "$LATEST"} {
		for _, base := range []string{srv.URL, srv.URL + "/", strings.TrimPrefix(srv.URL, "http://")} {
			seen = nil
			r := newRegistry()
			r.counter("c_total", "C.").Inc()
			if _, err := NewPusher(base, job, r, nil, creds).Push(context.Background()); err != nil {
				t.Fatalf("job %q at %q: %v", job, base, err)
			}
			reg := prometheus.NewRegistry()
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: "c_total", Help: "C."})
			c.Inc()
			reg.MustRegister(c)
			if err := push.New(base, job).Gatherer(reg).BasicAuth("user", "pa:ss").Add(); err != nil {
				t.Fatalf("client_golang, job %q at %q: %v", job, base, err)
			}
			if len(seen) != 2 || seen[0] != seen[1] {
				t.Errorf("job %q at %q: we sent %+v, client_golang %+v", job, base, seen[0], seen[1])
			}
		}
	}

	// Answers: 200 and 202 are accepted; others fail quoting the body.
	for _, code := range []int{http.StatusAccepted, http.StatusBadRequest} {
		status = code
		r := newRegistry()
		r.counter("c_total", "C.").Inc()
		_, err := NewPusher(srv.URL, "fn", r, nil, nil).Push(context.Background())
		if (err == nil) != (code == http.StatusAccepted) {
			t.Errorf("status %d: err = %v", code, err)
		}
	}
}

// A failed push's error quotes the gateway's answer as client_golang's.
func TestPushErrorQuotesTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "text format parsing error in line 3", http.StatusBadRequest)
	}))
	defer srv.Close()
	r := newRegistry()
	r.counter("c_total", "C.").Inc()
	_, err := NewPusher(srv.URL, "fn", r, nil, nil).Push(context.Background())
	want := "unexpected status code 400 while pushing to " + srv.URL + "/metrics/job/fn: text format parsing error in line 3"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to contain %q", err, want)
	}
}
