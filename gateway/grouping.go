package gateway

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus-lambda/prometheus-lambda/internal/pushbody"
)

// ParseGroupingPath returns the grouping labels encoded in the escaped URL
// path of a push, the part after "/metrics": "" for the root group (no
// labels), otherwise "/job/<job>{/<label>/<value>}". See
// pushbody.ParseGroupingPath, which it is.
func ParseGroupingPath(escapedPath string) (map[string]string, error) {
	return pushbody.ParseGroupingPath(escapedPath)
}

// labelPair is one label of a series or group.
type labelPair struct{ name, value string }

// sortedLabels turns a label map into pairs sorted by name.
func sortedLabels(m map[string]string) []labelPair {
	out := make([]labelPair, 0, len(m))
	for n, v := range m {
		out = append(out, labelPair{n, v})
	}
	slices.SortFunc(out, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	return out
}

// labelsKey encodes sorted labels into a map key. 0xff never occurs in valid
// UTF-8, so the encoding is unambiguous.
func labelsKey(ls []labelPair) string {
	n := 0
	for _, l := range ls {
		n += len(l.name) + len(l.value) + 2
	}
	var b strings.Builder
	b.Grow(n)
	for _, l := range ls {
		b.WriteString(l.name)
		b.WriteByte(0xff)
		b.WriteString(l.value)
		b.WriteByte(0xff)
	}
	return b.String()
}

// compareLabels orders sorted label sets pairwise by name, then value.
func compareLabels(a, b []labelPair) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].name, b[i].name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].value, b[i].value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// labelString renders labels for error messages: {a="1",b="2"}.
func labelString(ls []labelPair) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", l.name, l.value)
	}
	b.WriteByte('}')
	return b.String()
}
