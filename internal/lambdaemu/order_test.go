package lambdaemu

import (
	"slices"
	"testing"
)

func TestReordered(t *testing.T) {
	t.Parallel()
	if got := Reordered(5, 0, 2); !slices.Equal(got, []int{1, 0, 3, 2, 4}) {
		t.Errorf("Reordered(5, 0, 2) = %v", got)
	}
	if got := Reordered(3, 1, 1, 7, -1); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("a swap undone and out-of-range swaps ignored: got %v", got)
	}
}

// Config.Order reorders and redelivers batches; BeforeInvoke runs before
// each invocation and before SHUTDOWN.
func TestRunDeliversInOrder(t *testing.T) {
	t.Parallel()
	cfg, out := setup(t, "FAKEEXT_WAIT_BATCHES=7")
	sc := cfg.Scenario
	cfg.Order = []int{1, 0, 2, 4, 3, 1}
	cfg.Redeliver = []int{4}
	var calls []int
	cfg.BeforeInvoke = func(k int) { calls = append(calls, k) }
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !slices.Equal(calls, []int{0, 1, 2, 3, 4}) {
		t.Errorf("BeforeInvoke called with %v, want 0…3 and 4 before SHUTDOWN", calls)
	}
	if res.Delivered != 7 || res.Failed != 0 {
		t.Errorf("delivered %d, failed %d; want 7 (six slots, batch 4 redelivered), 0", res.Delivered, res.Failed)
	}
	want := []int{1, 0, 2, 4, 4, 3, 1}
	batches := ofKind(readRecords(t, out), "batch")
	if len(batches) != len(want) {
		t.Fatalf("listener got %d batches, want %d", len(batches), len(want))
	}
	for i, b := range batches {
		if b.Body != string(sc.Batches[want[i]]) {
			t.Errorf("POST %d is not batch %d", i, want[i])
		}
	}
}

func TestRunRejectsABadOrder(t *testing.T) {
	t.Parallel()
	sc, err := LoadScenario(scenarioPath)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := Run(t.Context(), Config{ExtensionPath: "/bin/true", Scenario: sc, Order: []int{0, len(sc.Batches)}}); err == nil || res != nil {
		t.Errorf("Run = %v, %v; want an error and no result", res, err)
	}
}
