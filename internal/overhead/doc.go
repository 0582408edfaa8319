// Package overhead measures what the extension costs a function, on the real
// layer binary: its benchmarks (`make bench-extension`, or
// `go test -run '^$' -bench . ./internal/overhead/`) start bin/extension as
// Lambda would, against a minimal in-process runtime API, and report
//
//   - ms/start: from starting the process to its first GET /event/next
//     (registration, Telemetry API listener, subscription), the median (and
//     p90) of 20 starts; ms/register: to its registration. Without
//     AUTH_SECRET, and with it, the secret then being read alongside init
//     from a local Secrets Manager, over HTTP or over HTTPS (system roots
//     loaded, TLS handshake), as in Lambda;
//   - µs/invoke: from handing out an INVOKE to the extension's next
//     GET /event/next, as the runtime API sees it, median (and p99) of
//     10,000 invocations, without a dispatch or with a push to a loopback
//     gateway stub at every INVOKE;
//   - MiB-rss, MiB-hwm, MiB-anon: VmRSS, VmHWM and RssAnon (RSS less the
//     mapped binary) from /proc/<pid>/status after those 10,000
//     invocations, each one's telemetry batch (platform.report of the
//     previous invocation, platform.start, a function log line,
//     platform.runtimeDone) POSTed to the extension's listener before its
//     INVOKE; MiB-rss-init, MiB-anon-init: the same at the first
//     /event/next;
//   - B-binary: the size of the binary in bytes.
//
// ns/op is suppressed: an iteration is a whole sample (20 starts, or one
// environment's 10,000 invocations), so run with -benchtime=1x and -count.
//
// The benchmarks measure the binary given with -extension (the Makefile
// passes bin/extension); without it they build one as `make build` does.
// The package has only quick tests of its fake runtime API otherwise.
package overhead
