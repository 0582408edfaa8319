package dispatcher

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/prometheus-lambda/prometheus-lambda/internal/family"
)

// The tests read what the dispatcher gathers and pushes through
// client_golang's data model, client_model's dto types, as independent
// oracles: family values are encoded with family.AppendDelimited and
// decoded with expfmt, and client_golang registries are read the other way.

// toDTO converts families through the wire format.
func toDTO(fams []family.Family) []*dto.MetricFamily {
	var b []byte
	for i := range fams {
		b = family.AppendDelimited(b, &fams[i])
	}
	dec := expfmt.NewDecoder(bytes.NewReader(b), expfmt.NewFormat(expfmt.TypeProtoDelim))
	var out []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			panic(err)
		}
		out = append(out, mf)
	}
}

// fromDTO converts dto families through the wire format.
func fromDTO(mfs []*dto.MetricFamily) []family.Family {
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := protodelim.MarshalTo(&b, mf); err != nil {
			panic(err)
		}
	}
	dec := family.NewDecoder(&b)
	var out []family.Family
	for {
		var f family.Family
		if err := dec.Decode(&f); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			panic(err)
		}
		out = append(out, f)
	}
}

// gatherDTO gathers gs, in dto form, sorted by name.
func gatherDTO(gs ...Gatherer) ([]*dto.MetricFamily, error) {
	var fams []family.Family
	for _, g := range gs {
		fams = append(fams, g.Gather()...)
	}
	slices.SortStableFunc(fams, func(a, b family.Family) int { return strings.Compare(a.Name, b.Name) })
	return toDTO(fams), nil
}

// promGatherer serves a client_golang Gatherer as a Gatherer.
func promGatherer(g prometheus.Gatherer) Gatherer {
	return GathererFunc(func() []family.Family {
		mfs, err := g.Gather()
		if err != nil {
			panic(err)
		}
		return fromDTO(mfs)
	})
}

// dtoGatherer serves a Gatherer as a client_golang Gatherer.
type dtoGatherer struct{ g Gatherer }

func (d dtoGatherer) Gather() ([]*dto.MetricFamily, error) { return gatherDTO(d.g) }

// WithLabelValues returns the series of the label values, as client_golang's
// vectors do (making it if needed).
func (v *vec) WithLabelValues(values ...string) *series { return v.with(values...) }

// toFloat64 is testutil.ToFloat64 for a counter or gauge series as well.
func toFloat64(c any) float64 {
	if s, ok := c.(*series); ok {
		return s.metric(family.Counter).Value
	}
	return testutil.ToFloat64(c.(prometheus.Collector))
}

// collectAndCount is testutil.CollectAndCount for a vec as well.
func collectAndCount(c any) int {
	if v, ok := c.(*vec); ok {
		v.mu.Lock()
		defer v.mu.Unlock()
		return len(v.sorted)
	}
	return testutil.CollectAndCount(c.(prometheus.Collector))
}

// fromWire decodes a protobuf-delimited body with family's decoder.
func fromWire(b []byte) []family.Family {
	dec := family.NewDecoder(bytes.NewReader(b))
	var out []family.Family
	for {
		var f family.Family
		if err := dec.Decode(&f); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			panic(err)
		}
		out = append(out, f)
	}
}
