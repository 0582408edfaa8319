package pushbody

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Label names that carry a sample's clear mode (see gateway.ClearModeLabel).
const (
	ClearModeLabel    = "clearmode"
	ClearModeLabelAlt = "clear_mode"
)

// Label names with a meaning of their own in the Prometheus data model.
const (
	bucketLabel         = "le"       // a histogram bucket's upper bound
	quantileLabel       = "quantile" // a summary quantile's φ
	reservedLabelPrefix = "__"       // names Prometheus keeps for itself
)

// base64Suffix marks a grouping label whose value in the URL path is base64url
// encoded, as in the Prometheus Pushgateway.
const base64Suffix = "@base64"

// ParseGroupingPath returns the grouping labels encoded in the escaped URL
// path of a push, the part after "/metrics": "" for the root group (no
// labels), otherwise "/job/<job>{/<label>/<value>}". Segments are
// percent-decoded ('+' stays '+', as in the Pushgateway). A name segment
// "<label>@base64" means the value segment is base64url encoded, with or
// without '=' padding; "=" or an empty segment encode the empty value. A
// label with an empty value is left out, as Prometheus treats it as absent:
// /job/x/shard@base64/= is the group {job="x"}.
//
// It fails when the path does not start with the job, the job is empty, a
// segment is not valid, a label name is invalid, reserved ("__" prefix), a
// clear mode label, or repeated.
func ParseGroupingPath(escapedPath string) (map[string]string, error) {
	if escapedPath == "" {
		return map[string]string{}, nil
	}
	parts := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	if len(parts)%2 != 0 {
		return nil, fmt.Errorf("grouping path %q: odd number of segments, want /job/<job>{/<label>/<value>}", escapedPath)
	}
	labels := make(map[string]string, len(parts)/2)
	seen := make(map[string]struct{}, len(parts)/2)
	for i := 0; i < len(parts); i += 2 {
		name, err := url.PathUnescape(parts[i])
		if err != nil {
			return nil, fmt.Errorf("grouping path %q: label name segment %q: %w", escapedPath, parts[i], err)
		}
		rawValue, err := url.PathUnescape(parts[i+1])
		if err != nil {
			return nil, fmt.Errorf("grouping path %q: value segment %q: %w", escapedPath, parts[i+1], err)
		}
		value := rawValue
		if n, ok := strings.CutSuffix(name, base64Suffix); ok {
			name = n
			if value, err = decodeBase64(rawValue); err != nil {
				return nil, fmt.Errorf("grouping label %q: invalid base64url value %q: %w", name, rawValue, err)
			}
		}
		if i == 0 && name != "job" {
			return nil, fmt.Errorf("grouping path %q must start with /job/<job>", escapedPath)
		}
		if err := CheckLabelName(name); err != nil {
			return nil, fmt.Errorf("grouping label: %w", err)
		}
		if name == ClearModeLabel || name == ClearModeLabelAlt {
			return nil, fmt.Errorf("grouping label %q: the clear mode is set per sample, not per group", name)
		}
		if !utf8.ValidString(value) {
			return nil, fmt.Errorf("grouping label %q: value is not valid UTF-8", name)
		}
		if _, dup := seen[name]; dup {
			return nil, fmt.Errorf("grouping label %q given twice", name)
		}
		seen[name] = struct{}{}
		// In Prometheus an empty label value is no label: keeping x="" as a
		// group of its own would expose its series twice, once as the group
		// without x. So the push goes to the group without x.
		if value != "" {
			labels[name] = value
		}
	}
	if labels["job"] == "" {
		return nil, fmt.Errorf("job name must not be empty")
	}
	return labels, nil
}

// decodeBase64 decodes base64url with optional '=' padding.
func decodeBase64(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	return string(b), err
}

// CheckLabelName accepts UTF-8 label names (as the text parser does) except
// reserved ones ("__" prefix). The gateway and the extension's local push
// endpoint both validate pushed label names with it.
func CheckLabelName(name string) error {
	if name == "" || !utf8.ValidString(name) {
		return fmt.Errorf("invalid label name %q", name)
	}
	if strings.HasPrefix(name, reservedLabelPrefix) {
		return fmt.Errorf("label name %q is reserved (prefix %q)", name, reservedLabelPrefix)
	}
	return nil
}

// labelPair is one label of a series or group.
type labelPair struct{ name, value string }

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
