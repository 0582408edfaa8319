package gateway

import (
	"hash/maphash"
	"slices"
	"strconv"
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

// labelString renders labels for error messages: {a="1",b="2"}. Only error
// paths call it: it allocates.
func labelString(ls []labelPair) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.value))
	}
	b.WriteByte('}')
	return b.String()
}

// A stored series keeps only its pushed labels (grouping labels excluded:
// the group holds them once), encoded by labelsKey into one string that is
// both its key within the family and its label storage. nextLabel decodes
// it.

// nextLabel splits the first label off an encoded label string: name, value
// and the rest. key must be non-empty and come from labelsKey.
func nextLabel(key string) (name, value, rest string) {
	i := strings.IndexByte(key, 0xff)
	name, key = key[:i], key[i+1:]
	j := strings.IndexByte(key, 0xff)
	return name, key[:j], key[j+1:]
}

// decodeLabels appends the labels encoded in key to dst.
func decodeLabels(dst []labelPair, key string) []labelPair {
	for key != "" {
		var n, v string
		n, v, key = nextLabel(key)
		dst = append(dst, labelPair{n, v})
	}
	return dst
}

// fullLabels returns the full label set of a series of group labels glabels
// with encoded pushed labels key, sorted by name. The two never share a name.
func fullLabels(glabels []labelPair, key string) []labelPair {
	pushed := decodeLabels(make([]labelPair, 0, 8), key)
	out := make([]labelPair, 0, len(glabels)+len(pushed))
	i, j := 0, 0
	for i < len(glabels) || j < len(pushed) {
		if j == len(pushed) || (i < len(glabels) && glabels[i].name < pushed[j].name) {
			out = append(out, glabels[i])
			i++
		} else {
			out = append(out, pushed[j])
			j++
		}
	}
	return out
}

// identitySeed seeds identity hashes; process-local, never persisted.
var identitySeed = maphash.MakeSeed()

// identityHash hashes a series' identity: its family name and full label set
// (group labels glabels merged with the encoded pushed labels key, in name
// order). Equal identities hash equal whatever group they are in; the clash
// index verifies matches, so collisions cost a lookup, never correctness.
func identityHash(name string, glabels []labelPair, key string) uint64 {
	var h maphash.Hash
	h.SetSeed(identitySeed)
	h.WriteString(name)
	h.WriteByte(0xff)
	i := 0
	for key != "" {
		n, v, rest := nextLabel(key)
		for i < len(glabels) && glabels[i].name < n {
			writeLabel(&h, glabels[i].name, glabels[i].value)
			i++
		}
		writeLabel(&h, n, v)
		key = rest
	}
	for ; i < len(glabels); i++ {
		writeLabel(&h, glabels[i].name, glabels[i].value)
	}
	return h.Sum64()
}

func writeLabel(h *maphash.Hash, n, v string) {
	h.WriteString(n)
	h.WriteByte(0xff)
	h.WriteString(v)
	h.WriteByte(0xff)
}

// pushedKey returns the encoded pushed labels that the series with full label
// set identity (group labels gl merged with pushed labels key) would have in
// a group with labels other, and whether such a series can exist there:
// other's labels must all be in the full set with the same values.
func pushedKey(gl []labelPair, key string, other []labelPair) (string, bool) {
	full := fullLabels(gl, key)
	rest := make([]labelPair, 0, len(full))
	j := 0
	for _, l := range full {
		if j < len(other) && other[j].name == l.name {
			if other[j].value != l.value {
				return "", false
			}
			j++
			continue
		}
		rest = append(rest, l)
	}
	if j != len(other) {
		return "", false
	}
	return labelsKey(rest), true
}
