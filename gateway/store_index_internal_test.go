package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

func counters(name string, statuses ...string) []fam.Family {
	f := fam.Family{Name: name, Type: fam.Counter}
	for _, s := range statuses {
		f.Metrics = append(f.Metrics, fam.Metric{Value: 1, Labels: []fam.Label{{Name: "status", Value: s}}})
	}
	return []fam.Family{f}
}

// TestStatsAndLimits: Stats counts groups and series as pushes, family mode,
// PUT, DELETE and Wipe change them; MaxSeries and MaxSeriesPerGroup reject
// a push whole with a *LimitError naming the limit.
func TestStatsAndLimits(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(StoreOptions{MaxSeries: 4, MaxSeriesPerGroup: 3})
	a, b := map[string]string{"job": "a"}, map[string]string{"job": "b"}
	want := func(groups, series int) {
		t.Helper()
		if st := s.Stats(); st != (StoreStats{Groups: groups, Series: series}) {
			t.Fatalf("Stats = %+v, want %d groups, %d series", st, groups, series)
		}
	}
	if err := s.Push(ctx, a, counters("c_total", "200", "500"), false); err != nil {
		t.Fatal(err)
	}
	want(1, 2)
	if err := s.Push(ctx, a, counters("c_total", "200", "500"), false); err != nil {
		t.Fatal(err)
	}
	want(1, 2) // merged, not added
	var le *LimitError
	err := s.Push(ctx, a, counters("d_total", "1", "2"), false)
	if !errors.As(err, &le) || le.Limit != "max_series_per_group" || le.Max != 3 || le.Would != 4 || !strings.Contains(err.Error(), "max_series_per_group") {
		t.Fatalf("per-group limit: %v", err)
	}
	want(1, 2)
	// PUT drops the families it does not carry: 2 series, within the limit.
	if err := s.Push(ctx, a, counters("d_total", "1", "2"), true); err != nil {
		t.Fatal(err)
	}
	want(1, 2)
	if err := s.Push(ctx, b, counters("c_total", "1", "2"), false); err != nil {
		t.Fatal(err)
	}
	want(2, 4)
	err = s.Push(ctx, b, counters("e_total", "1"), false)
	if !errors.As(err, &le) || le.Limit != "max_series" || le.Would != 5 {
		t.Fatalf("total limit: %v", err)
	}
	s.Delete(context.Background(), b)
	want(1, 2)
	s.RecordFailure(b)
	want(2, 2)
	s.Wipe(context.Background())
	want(0, 0)
}

// TestClashIndexCollisions: the index keeps every group of a colliding hash,
// and a hash match that is not the same series is no clash.
func TestClashIndexCollisions(t *testing.T) {
	s := NewMemoryStore(StoreOptions{})
	g1, g2, g3 := &group{}, &group{}, &group{}
	s.indexAdd(7, g1)
	s.indexAdd(7, g2)
	s.indexAdd(7, g3)
	s.indexAdd(7, g2)
	if s.index[7] != g1 || len(s.overflow[7]) != 2 {
		t.Fatalf("index %p, overflow %v", s.index[7], s.overflow[7])
	}
	s.indexRemove(7, g1)
	s.indexRemove(7, g3)
	if s.index[7] != g2 || len(s.overflow[7]) != 0 {
		t.Fatalf("after removals: index %p, overflow %v", s.index[7], s.overflow[7])
	}
	s.indexRemove(7, g2)
	if len(s.index) != 0 || len(s.overflow) != 0 {
		t.Fatal("index not empty")
	}

	// A forged collision: the pushed series' hash points at a group that
	// holds another series; the push is accepted.
	ctx := context.Background()
	if err := s.Push(ctx, map[string]string{"job": "a"}, counters("c_total", "1"), false); err != nil {
		t.Fatal(err)
	}
	glabels := []labelPair{{"job", "b"}}
	pushed, err := preparePush(glabels, counters("c_total", "2"))
	if err != nil {
		t.Fatal(err)
	}
	pushed[0].hashes[0] = identityHash("c_total", []labelPair{{"job", "a"}}, labelsKey([]labelPair{{"status", "1"}}))
	if err := s.check(nil, glabels, pushed, false, true); err != nil {
		t.Fatalf("a hash collision is no clash: %v", err)
	}
	// The same series in another group is a clash, found through the index.
	pushed, _ = preparePush(nil, []fam.Family{{Name: "c_total", Type: fam.Counter, Metrics: []fam.Metric{{Value: 1, Labels: []fam.Label{{Name: "job", Value: "a"}, {Name: "status", Value: "1"}}}}}})
	if err := s.check(nil, nil, pushed, false, true); err == nil || !strings.Contains(err.Error(), `already pushed to group {job="a"}`) {
		t.Fatalf("clash: %v", err)
	}
}

// TestSeriesLimitAnswers429: a push over a store series limit answers 429
// and changes nothing.
func TestSeriesLimitAnswers429(t *testing.T) {
	s := NewMemoryStore(StoreOptions{MaxSeries: 1})
	gw, err := New(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	push := func(body string) int {
		r := httptest.NewRequest(http.MethodPost, "/metrics/job/x", strings.NewReader(body))
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, r)
		return w.Code
	}
	if c := push("a 1\n"); c != http.StatusOK {
		t.Fatalf("first push: %d", c)
	}
	if c := push("b 1\n"); c != http.StatusTooManyRequests {
		t.Fatalf("over the limit: %d, want 429", c)
	}
	if st := s.Stats(); st.Series != 1 {
		t.Fatalf("series %d after a rejected push", st.Series)
	}
}
