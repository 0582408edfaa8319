package dispatcher

import (
	"testing"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

func counterFamily(name string, v float64, labels ...string) family.Family {
	m := family.Metric{Value: v}
	for i := 0; i+1 < len(labels); i += 2 {
		m.Labels = append(m.Labels, family.Label{Name: labels[i], Value: labels[i+1]})
	}
	return family.Family{Name: name, Type: family.Counter, Metrics: []family.Metric{m}}
}

func familyLabelValue(m family.Metric, name string) string {
	for _, l := range m.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

func TestDeltasTreatsADropAsARestart(t *testing.T) {
	_, acked := deltas([]family.Family{counterFamily("c_total", 10)}, snapshot{})
	out, _ := deltas([]family.Family{counterFamily("c_total", 4)}, acked)
	if len(out) != 1 || out[0].Metrics[0].Value != 4 {
		t.Fatalf("after a reset to 4 the delta must be 4, got %v", out)
	}
}

func TestDeltasSeparatesSeriesByLabels(t *testing.T) {
	_, acked := deltas([]family.Family{counterFamily("c_total", 5, "status", "success")}, snapshot{})
	out, _ := deltas([]family.Family{counterFamily("c_total", 5, "status", "success"), counterFamily("c_total", 2, "status", "error")}, acked)
	if len(out) != 1 || len(out[0].Metrics) != 1 {
		t.Fatalf("want only the error series, got %v", out)
	}
	m := out[0].Metrics[0]
	if familyLabelValue(m, "status") != "error" || m.Value != 2 {
		t.Fatalf("delta = %v", m)
	}
}

func TestDeltasGaugesOnlyRideAlong(t *testing.T) {
	g := family.Family{Name: "g", Type: family.Gauge, Metrics: []family.Metric{{Value: 7}}}
	if out, _ := deltas([]family.Family{g}, snapshot{}); out != nil {
		t.Fatalf("gauges alone must not make a push, got %v", out)
	}
	out, _ := deltas([]family.Family{g, counterFamily("c_total", 1)}, snapshot{})
	if len(out) != 2 {
		t.Fatalf("gauge must ride along with a counter increment, got %v", out)
	}
}

func TestWithLabelKeepsOrder(t *testing.T) {
	in := []family.Label{{Name: "a", Value: "1"}, {Name: "z", Value: "2"}}
	out := withLabel(in, "clearmode", "aggregate")
	var names []string
	for _, l := range out {
		names = append(names, l.Name)
	}
	if len(names) != 3 || names[0] != "a" || names[1] != "clearmode" || names[2] != "z" {
		t.Fatalf("labels = %v", names)
	}
}
