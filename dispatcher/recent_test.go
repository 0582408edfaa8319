package dispatcher

import "testing"

func TestRecentIDsForgetsWithinBound(t *testing.T) {
	r := newRecentIDs(2)
	for _, id := range []string{"a", "b", "c"} {
		if !r.add(id) {
			t.Fatalf("%s reported as seen", id)
		}
	}
	if r.add("c") || r.add("b") {
		t.Fatalf("recent ids forgotten")
	}
	if !r.add("a") {
		t.Fatalf("the oldest id was not forgotten")
	}
	if got := r.len(); got != 2 {
		t.Fatalf("remembered %d ids, want 2", got)
	}
}

func TestRecentIDsFlags(t *testing.T) {
	r := newRecentIDs(2)
	r.add("a")
	if r.flagged("a") {
		t.Fatal("a new id is flagged")
	}
	r.setFlag("a")
	if !r.flagged("a") {
		t.Fatal("setFlag did not flag a remembered id")
	}
	r.setFlag("zzz") // not remembered: must not be added
	if r.flagged("zzz") || r.len() != 1 {
		t.Fatalf("setFlag added an id it did not remember (len %d)", r.len())
	}
	r.add("b")
	r.add("c") // forgets a
	if r.flagged("a") {
		t.Fatal("a forgotten id is still flagged")
	}
}
