package telemetryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
)

// resettableBody is a request body that can be replayed without allocating.
type resettableBody struct{ bytes.Reader }

func (*resettableBody) Close() error { return nil }

// BenchmarkListenerBatch pushes the fixture's 24 events, as one batch, through
// the handler. Each iteration stamps a distinct nanosecond into the first
// event's time so that the batch is new to the redelivery filter, as every
// genuine batch is.
func BenchmarkListenerBatch(b *testing.B) {
	var all []json.RawMessage
	for _, batch := range loadFixture(b).Batches {
		var events []json.RawMessage
		if err := json.Unmarshal(batch, &events); err != nil {
			b.Fatal(err)
		}
		all = append(all, events...)
	}
	body, err := json.Marshal(all)
	if err != nil {
		b.Fatal(err)
	}
	const stamp = `"2026-11-02T10:00:00.012Z"`
	i := bytes.Index(body, []byte(stamp))
	if i < 0 {
		b.Fatal("fixture lacks the first timestamp")
	}
	body = bytes.Replace(body, []byte(stamp), []byte(`"2026-11-02T10:00:00.012000000Z"`), 1)
	digits := body[i+21 : i+30] // the nine fractional digits

	var handled int
	l := NewListener("127.0.0.1:0", func(_ context.Context, events []Event) { handled += len(events) }, nil)
	rb := &resettableBody{}
	req, _ := http.NewRequest(http.MethodPost, "/", nil)
	req.Body = rb
	req.ContentLength = int64(len(body))
	w := &discardResponse{h: http.Header{}}

	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		for j, v := len(digits)-1, n; j >= 0; j, v = j-1, v/10 {
			digits[j] = byte('0' + v%10)
		}
		rb.Reset(body)
		w.code = 0
		l.ServeHTTP(w, req)
		if w.status() != http.StatusOK {
			b.Fatalf("status %d", w.status())
		}
	}
	if handled != n*len(all) {
		b.Fatalf("handled %d events, want %d", handled, n*len(all))
	}
}

// BenchmarkDecodeReport decodes the fixture's richest platform.report (full
// metrics, spans, tracing), compact as Lambda sends it.
func BenchmarkDecodeReport(b *testing.B) {
	var ev Event
	for _, e := range fixtureEvents(b) {
		if e.Type == TypePlatformReport {
			ev = e
			break
		}
	}
	// Lambda sends compact JSON; the fixture is indented.
	var compact bytes.Buffer
	if err := json.Compact(&compact, ev.Record); err != nil {
		b.Fatal(err)
	}
	ev.Record = compact.Bytes()
	b.SetBytes(int64(len(ev.Record)))
	b.ReportAllocs()
	for b.Loop() {
		rec, err := ev.DecodeRecord()
		if err != nil {
			b.Fatal(err)
		}
		if rec.(*PlatformReport).Metrics.InitDurationMs == nil {
			b.Fatal("initDurationMs lost")
		}
	}
}
