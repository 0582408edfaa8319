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
// pushed labels of the same name (as in the Pushgateway, which overwrites
// them: the push is accepted; two pushed series that then become the same
// series are a series pushed twice, 400); pushed labels with an empty value
// are dropped. A family may mix label names.
//
//	clearmode          merge with the stored series             default for
//	aggregate, sum     add                                      counter, histogram, summary, untyped
//	replace            the pushed value replaces the stored one gauge, gauge histogram
//	family, info       the family in that group becomes exactly
//	                   the pushed samples                       -
//	mean5m, p99_5m, …  a statistic of the values pushed within
//	                   a sliding window (gauge, untyped)        -
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
// # Windowed statistics
//
// A clear mode <stat>[_]<duration> exposes a statistic of the values pushed
// for the series within a sliding window of that length: stat is mean, sum,
// min, max, median or count, the underscore is optional (mean5m, mean_5m,
// max1h, median30s, count_1d). Percentiles are p<P>_<duration> with P in
// [0, 100], decimals allowed, and the underscore required (p99_5m,
// p99.9_1h, p0_5m = min, p100_5m = max; p995m is rejected as ambiguous).
// The duration is a Prometheus duration (500ms, 30s, 5m, 1h30m, 1d, 1w),
// greater than 0 and at most 7d. Names are lower case; anything else that
// starts like one (p99x5m, mean0s, p101_5m, mean5, meanfoo, max8d) is
// rejected with 400 naming it.
//
// Windowed modes apply to gauge and untyped samples, whose values may be
// averaged; the family keeps its pushed type. On a counter (a statistic of
// counter values is not monotonic, and rate() over it would be wrong: push a
// gauge), a histogram or a summary they are rejected, as is a NaN or
// infinite value.
//
// Each pushed value enters the series' window at the store's clock time of
// the push. A value pushed at t is in the window at time now while
// now − length < t: it counts during [t, t+length) and leaves at t+length
// exactly (evicted at pushes and scrapes, not in buckets that reset). A
// series whose window is empty is not exposed, nor is a family whose every
// series is; a new push brings it back with that value alone. If the clock
// steps back, a value counts as pushed at the newest value's time.
//
// count is the number of values in the window, sum their sum, mean sum/count.
// Percentiles (median = p50) use linear interpolation between closest ranks,
// numpy's default and R's type 7: with the n values sorted x₀ ≤ … ≤ xₙ₋₁ and
// h = (n−1)·P/100, the result is x⌊h⌋ + (h−⌊h⌋)(x⌊h⌋₊₁ − x⌊h⌋).
//
// Mode changes: a series pushed with the same window spec (stat, percentile
// and length; mean5m, mean_5m and mean300s are the same) adds to its window.
// Pushed with any other mode, windowed or not (the default mode included), the
// series restarts from that push as if new: the window and the stored value
// are dropped. Windowed and other modes mix freely within a family, except
// family, which must be the mode of the whole family.
//
// Accuracy and memory: a window keeps its newest 10,000 values raw, so every
// statistic is exact while the window holds at most 10,000 values. Beyond,
// the older values are folded into time slices of length/60 (at most 61 per
// window), each keeping count, sum, min and max, and for percentile modes a
// DDSketch (github.com/DataDog/sketches-go, the reference implementation:
// logarithmic mapping, collapsing-lowest dense stores) of relative accuracy
// 1% with at most 1024 bins per sign. Whatever the push rate, a window thus
// holds at most 10,000 raw values (160 KB) and 61 slices of 56 bytes, plus
// for percentile modes a sketch of at most about 21 KB each (1024 bins of 8
// bytes per sign and spare capacity; a few KB for values spanning a few
// decades). While slices are in use: a folded value leaves the window when
// the newest value of its slice does, so up to length/60 late; count, sum,
// mean, min and max are exact over the values then covered; a percentile is
// estimated from one sketch merging the slices' and the raw values,
// interpolating between the values at its two ranks, each read within 1%
// relative error (DDSketch's guarantee, for magnitudes within a factor 7·10⁸
// of the largest of the same sign in the window; smaller ones are read as
// that bound, and magnitudes above about 1.27·10³⁰⁸ count as that), and is
// never outside [min, max]. Once the folded values have aged out the window
// is exact again.
//
// # Rejected pushes
//
// A push is applied whole or not at all. It is rejected with 400 and a
// message naming the metric (and the line, for text and OpenMetrics parse
// errors) when: the body is malformed; a
// sample carries a timestamp; the clear mode is unknown, a malformed windowed
// statistic, windowed on a counter, histogram or summary or with a NaN or
// infinite value, given with both spellings, or family mixed with other modes
// in one family; a family's type differs from the type stored
// for that name in any group or from the gateway's own metric of that name; a
// new name collides with a histogram's or summary's _bucket/_count/_sum series
// or with the _created series of a counter, histogram or summary (either
// way); a series appears twice in one push; an aggregated counter is
// negative or NaN; histogram buckets are not cumulative, exceed the count, or
// the +Inf bucket differs from the count; a summary quantile is outside
// [0, 1]; metric or label names are invalid (UTF-8 names are accepted, "__"
// label prefixes are reserved; le and quantile are reserved in histograms and
// summaries); or a series equals one stored in another group.
//
// # Push times, expiry and the rest of the Pushgateway API
//
// Every group exposes push_time_seconds and push_failure_time_seconds gauges
// with its grouping labels, as the Pushgateway does: the Unix time of the
// last successful and of the last failed push into the group (0 if none).
// Any push answered with an error (400, 413, 415, 5xx) to a valid grouping
// path counts as failed, parse errors included; a failed push into a group
// that does not exist creates it, holding only those two gauges. Pushed
// families with either name are rejected (400). A successful push that
// leaves a group without series removes the group.
//
// With StoreOptions.TTL (the command's --push.ttl; off by default) a series
// not pushed for longer than the TTL is removed: it leaves the scrape, and a
// later push of it starts afresh. A group left without series goes with its
// push time gauges; a group created by a failed push lives for the TTL after
// its last failure. See MemoryStore.Sweep and MemoryStore.Run.
//
// The JSON API of the Pushgateway (/api/v1/metrics, /api/v1/status), its
// admin wipe and lifecycle quit endpoints and an HTML status page are served
// too; see Gateway.
//
// # Input formats
//
// A push body is the text format 0.0.4 (the default), protobuf delimited
// (Content-Type application/vnd.google.protobuf;
// proto=io.prometheus.client.MetricFamily; encoding=delimited) or OpenMetrics
// text (Content-Type application/openmetrics-text, version 1.0.0 or 0.0.1;
// other versions answer 415), each optionally gzip-compressed. OpenMetrics
// families become the families a text-format client writes for the same
// metrics: counter foo (samples foo_total, foo_created) the counter foo_total,
// info foo (foo_info) the gauge foo_info, stateset foo a gauge foo with the
// state label (values 0 or 1), gaugehistogram (_bucket, _gcount, _gsum) a
// gauge histogram, unknown an untyped family; gauge, histogram and summary
// keep their type. An info sample without a clear mode label gets clear mode
// family (an info metric describes its pusher: the latest push's label sets
// are the family in that group, so a new version replaces the old); a
// stateset's states are gauges, replaced. The body must end with # EOF and
// follow the OpenMetrics grammar (no blank lines, other comments, carriage
// returns, interleaved families or metrics, or metadata after samples); the
// error names the line. Sample timestamps are rejected as in the text format;
// exemplars are checked and dropped; UNIT must be a suffix of the family name
// and is not kept.
//
// # Created timestamps
//
// Counters, histograms and summaries are exposed with a created timestamp
// (protobuf created_timestamp, OpenMetrics _created sample). For a series
// merged by aggregate it is when the gateway first stored the series, not any
// pusher's: the sum started then, and later pushes do not change it. A series
// merged by replace or family takes the pushed created timestamp, if any
// (the value is the pusher's), else keeps its first-stored time. A dropped
// series starts afresh. Python's client writes created times in the text
// format as gauge families X_created beside counter X_total, histogram X or
// summary X; such a gauge family is dropped when its sibling is in the same
// push, its values counting as the sibling series' pushed created timestamps
// (ignored under aggregate, as above), so no gauge carries the last pusher's
// start time. See created.go.
//
// # Exactly-once pushes
//
// A PUT or POST may carry an Idempotency-Key header (IETF draft "The
// Idempotency-Key HTTP Header Field"). The answer to the first request with a
// key is remembered for Options.Idempotency.Retention (default 10 minutes,
// the command's --push.idempotency-retention) and at most MaxKeys answers
// (default 100000, oldest forgotten first); a repeat of the same request
// (method, path, Content-Type, Content-Encoding, body) gets that answer with
// Idempotent-Replayed: true and is not applied again, so a client that
// retries after a timeout never counts twice. A key reused for a different
// request answers 422; a repeat arriving while the first is being applied
// waits for its answer. 2xx and 4xx answers are remembered, 5xx answers are
// not (the retry is applied). Go's net/http client itself replays a request
// carrying an Idempotency-Key when a kept-alive connection breaks; the key
// makes that harmless. See idempotency.go.
//
// # Not kept
//
// Native-histogram fields and exemplars are ignored. Families without samples
// are ignored. HELP is store-wide per name: the latest non-empty pushed HELP
// wins.
package gateway
