// Package gateway is an aggregating Prometheus push gateway: it merges what
// many short-lived pushers (Lambda execution environments) send, following
// each sample's clearmode label (Gravel Gateway's semantics), and speaks the
// Prometheus Pushgateway HTTP API so existing client libraries push to it
// unchanged. See Gateway for the endpoints.
//
// # Merging
//
// A series is identified by its family name and full label set: the grouping
// labels from the URL path plus the pushed labels, matched by name and value,
// with the clearmode (or clear_mode) label removed. Grouping labels win over
// pushed labels of the same name; pushed labels with an empty value are
// dropped. A family may mix label names.
//
//	clearmode          merge with the stored series             default for
//	aggregate, sum     add                                      counter, histogram, summary, untyped
//	replace            the pushed value replaces the stored one gauge, gauge histogram
//	family, info       the family in that group becomes exactly
//	                   the pushed samples                       -
//
// Aggregating a histogram adds count, sum and buckets. With the same bucket
// bounds this is plain addition. With different bounds the result has the
// union of the bounds, and at each bound b each side contributes its
// cumulative count at its own largest bound ≤ b (0 if none): exact on shared
// bounds, cumulative, and a lower estimate at bounds only one side has.
// Aggregating a summary adds count and sum; its quantiles are the latest
// push's. Replace takes the whole value, all buckets and quantiles included.
//
// PUT makes the pushed families the group's whole set (other families of the
// group are dropped) and merges each pushed family as POST does, so series of
// a pushed family that this push does not mention stay. DELETE removes the
// group.
//
// # Rejected pushes
//
// A push is applied whole or not at all. It is rejected with 400 and a
// message naming the metric (and the line, for text parse errors) when: a
// sample carries a timestamp; the clear mode is unknown, windowed (mean5m,
// p99_5m, … not supported yet), given with both spellings, or family mixed
// with other modes in one family; a family's type differs from the type stored
// for that name in any group or from the gateway's own metric of that name; a
// new name collides with a histogram's or summary's _bucket/_count/_sum series
// (either way); a series appears twice in one push; an aggregated counter is
// negative or NaN; histogram buckets are not cumulative, exceed the count, or
// the +Inf bucket differs from the count; a summary quantile is outside
// [0, 1]; metric or label names are invalid (UTF-8 names are accepted, "__"
// label prefixes are reserved; le and quantile are reserved in histograms and
// summaries); or a series equals one stored in another group.
//
// # Not kept
//
// Native-histogram fields, exemplars and created timestamps of pushed
// protobuf are ignored. Families without samples are ignored. HELP is
// store-wide per name: the latest non-empty pushed HELP wins. OpenMetrics
// input is not supported yet (415).
package gateway
