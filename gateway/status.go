package gateway

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// The status page: a server-rendered HTML table of the groups (grouping
// labels, families, series, last push and failure), no scripts.

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"abs":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"rel":   relativeTime,
	"lower": func(v fmt.Stringer) string { return strings.ToLower(v.String()) },
}).Parse(statusHTML))

type statusPage struct {
	Started, Now time.Time
	Groups       []statusGroup
	Flags        map[string]string
}

type statusGroup struct {
	Snapshot GroupSnapshot
	Labels   []statusLabel // job first, then by name (as the Pushgateway's page)
	Series   int
}

type statusLabel struct{ Name, Value string }

// serveStatus serves GET / and /status.
func (g *Gateway) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	page := statusPage{Started: g.started, Now: time.Now(), Flags: g.flags}
	for _, gs := range g.store.Groups() {
		sg := statusGroup{Snapshot: gs}
		for _, l := range sortedLabels(gs.Labels) {
			sl := statusLabel{l.name, l.value}
			if l.name == "job" {
				sg.Labels = append([]statusLabel{sl}, sg.Labels...)
			} else {
				sg.Labels = append(sg.Labels, sl)
			}
		}
		for _, f := range gs.Families {
			sg.Series += len(f.Family.GetMetric())
		}
		page.Groups = append(page.Groups, sg)
	}
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, page); err != nil {
		g.logger.Error("rendering status page", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// relativeTime renders how long ago t was, coarsely: "12s ago", "3m ago",
// "5h ago", "2d ago" ("in 3s" for a time ahead of the wall clock).
func relativeTime(t time.Time) string {
	d := time.Since(t)
	suffix := " ago"
	prefix := ""
	if d < 0 {
		d, prefix, suffix = -d, "in ", ""
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		s = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return prefix + s + suffix
}
