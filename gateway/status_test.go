package gateway_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

// TestStatusPage renders the HTML status page and checks its rows: one per
// group with labels (job first), family and series counts, last push and
// failure times, failed groups marked, everything escaped.
func TestStatusPage(t *testing.T) {
	clk := newFakeClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	g := newOptsGateway(t, gateway.StoreOptions{Now: clk.Now}, gateway.Options{Flags: map[string]string{"push.ttl": "0s"}})
	g.push(http.MethodPost, "/metrics/job/fn/alias/live", "# HELP a_total Invocations.\n# TYPE a_total counter\na_total{k=\"1\"} 1\na_total{k=\"2\"} 1\n# TYPE b gauge\nb 1\n", http.StatusOK)
	clk.Add(time.Minute)
	g.push(http.MethodPost, "/metrics/job/fn/alias/live", "bad{\n", http.StatusBadRequest)
	g.push(http.MethodPost, "/metrics/job/x%3Cscript%3E", "c 1\n", http.StatusOK)

	for _, path := range []string{"/", "/status"} {
		code, body := g.do(http.MethodGet, path, nil, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, code)
		}
		rows := regexp.MustCompile(`(?s)<tr class="group( failed)?">(.*?)</tr>`).FindAllStringSubmatch(body, -1)
		if len(rows) != 2 {
			t.Fatalf("GET %s: %d group rows, want 2:\n%s", path, len(rows), body)
		}
		// Sorted by grouping labels: alias=live sorts before job only.
		fn, x := rows[0], rows[1]
		cell := func(row []string, class string) string {
			m := regexp.MustCompile(`<td class="[^"]*\b` + class + `">(.*?)</td>`).FindStringSubmatch(row[2])
			if m == nil {
				t.Fatalf("no %s cell in %s", class, row[2])
			}
			return m[1]
		}
		if fn[1] != " failed" || x[1] != "" {
			t.Errorf("failed markers %q %q, want the fn group failed only", fn[1], x[1])
		}
		if got := cell(fn, "labels"); got != `<code>job="fn"</code> <code>alias="live"</code> ` {
			t.Errorf("labels cell %q, want job first", got)
		}
		if cell(fn, "families") != "2" || cell(fn, "series") != "3" {
			t.Errorf("fn counts: %s families, %s series, want 2, 3", cell(fn, "families"), cell(fn, "series"))
		}
		if p := cell(fn, "push"); !strings.Contains(p, "2025-01-02T03:04:05Z") {
			t.Errorf("fn last push %q", p)
		}
		if f := cell(fn, "failure"); !strings.Contains(f, "2025-01-02T03:05:05Z") {
			t.Errorf("fn last failure %q", f)
		}
		if f := cell(x, "failure"); f != "never" {
			t.Errorf("x last failure %q, want never", f)
		}
		if l := cell(x, "labels"); l != `<code>job=&#34;x&lt;script&gt;&#34;</code> ` && l != `<code>job="x&lt;script&gt;"</code> ` {
			t.Errorf("x labels not escaped: %q", l)
		}
		if strings.Contains(body, "<script>") {
			t.Error("unescaped <script> in the page")
		}
		for _, want := range []string{"<code>a_total</code> counter, 2 series", "Invocations.", "--push.ttl"} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	}
	if code, _ := g.do(http.MethodPost, "/", nil, nil); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", code)
	}

	empty := newOptsGateway(t, gateway.StoreOptions{}, gateway.Options{})
	if _, body := empty.do(http.MethodGet, "/", nil, nil); !strings.Contains(body, "No groups.") {
		t.Errorf("empty page lacks the no-groups note")
	}
}
