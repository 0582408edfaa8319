package dispatcher

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func counterFamily(name string, v float64, labels ...string) *dto.MetricFamily {
	m := &dto.Metric{Counter: &dto.Counter{Value: proto.Float64(v)}}
	for i := 0; i+1 < len(labels); i += 2 {
		m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(labels[i]), Value: proto.String(labels[i+1])})
	}
	return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{m}}
}

func TestDeltasTreatsADropAsARestart(t *testing.T) {
	_, acked := deltas([]*dto.MetricFamily{counterFamily("c_total", 10)}, snapshot{})
	out, _ := deltas([]*dto.MetricFamily{counterFamily("c_total", 4)}, acked)
	if len(out) != 1 || out[0].Metric[0].GetCounter().GetValue() != 4 {
		t.Fatalf("after a reset to 4 the delta must be 4, got %v", out)
	}
}

func TestDeltasSeparatesSeriesByLabels(t *testing.T) {
	_, acked := deltas([]*dto.MetricFamily{counterFamily("c_total", 5, "status", "success")}, snapshot{})
	out, _ := deltas([]*dto.MetricFamily{counterFamily("c_total", 5, "status", "success"), counterFamily("c_total", 2, "status", "error")}, acked)
	if len(out) != 1 || len(out[0].Metric) != 1 {
		t.Fatalf("want only the error series, got %v", out)
	}
	m := out[0].Metric[0]
	if labelValue(m, "status") != "error" || m.GetCounter().GetValue() != 2 {
		t.Fatalf("delta = %v", m)
	}
}

func TestDeltasGaugesOnlyRideAlong(t *testing.T) {
	g := &dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(7)}}}}
	if out, _ := deltas([]*dto.MetricFamily{g}, snapshot{}); out != nil {
		t.Fatalf("gauges alone must not make a push, got %v", out)
	}
	out, _ := deltas([]*dto.MetricFamily{g, counterFamily("c_total", 1)}, snapshot{})
	if len(out) != 2 {
		t.Fatalf("gauge must ride along with a counter increment, got %v", out)
	}
}

func TestWithLabelKeepsOrder(t *testing.T) {
	in := []*dto.LabelPair{{Name: proto.String("a"), Value: proto.String("1")}, {Name: proto.String("z"), Value: proto.String("2")}}
	out := withLabel(in, "clearmode", "aggregate")
	var names []string
	for _, l := range out {
		names = append(names, l.GetName())
	}
	if len(names) != 3 || names[0] != "a" || names[1] != "clearmode" || names[2] != "z" {
		t.Fatalf("labels = %v", names)
	}
}
