// Command benchcompare measures our push gateway against Debian's
// prometheus-pushgateway on the same machine in the same run (`make
// bench-compare`): each target is started on a free 127.0.0.1 port, warmed
// up, loaded by concurrent closed-loop keep-alive clients POSTing a
// Lambda-shaped body (about 60 samples: counters, four histograms with the
// extension's bucket layouts, a gauge and an info family) to a rotating set
// of grouping keys, and stopped. It prints pushes/s, p50/p90/p99/max latency
// and errors per target, the ratio ours/Pushgateway and the verdict against
// the target (≥ 10× the Pushgateway's pushes/s with p99 ≤ 2 ms).
//
//	go run ./internal/benchcompare --gateway-bin bin/gateway [--duration 10s] [--concurrency 8,32] [--rounds 3] [--json]
package main

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// The target.
const (
	targetRatio = 10.0
	targetP99   = 2 * time.Millisecond
)

type options struct {
	gatewayBin      string
	pushgatewayBin  string
	skipMissing     bool
	duration        time.Duration
	warmup          time.Duration
	concurrency     []int
	rounds          int
	format          string
	gatewayArgs     []string
	pushgatewayArgs []string
	groups          int
	job             string
	json            bool
	prefill         bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcompare:", err)
	}
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("benchcompare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	var conc, gwArgs, pgArgs string
	fs.StringVar(&o.gatewayBin, "gateway-bin", "bin/gateway", "our gateway binary (make build builds it)")
	fs.StringVar(&o.pushgatewayBin, "pushgateway-bin", "prometheus-pushgateway", "the Prometheus Pushgateway binary, looked up on PATH (Debian: apt-get install prometheus-pushgateway)")
	fs.BoolVar(&o.skipMissing, "skip-missing", false, "measure ours only when the Pushgateway binary is missing")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "recorded load per target and round")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before recording, per target and round")
	fs.StringVar(&conc, "concurrency", "8", "concurrent keep-alive clients; a comma-separated list sweeps (e.g. 1,8,32)")
	fs.IntVar(&o.rounds, "rounds", 1, "A/B rounds (ours, Pushgateway, ours, …); medians are reported")
	fs.StringVar(&o.format, "format", "protobuf", "push body format: protobuf (delimited, what the extension sends) or text")
	fs.StringVar(&gwArgs, "gateway-args", "", "extra arguments for our gateway, space-separated (e.g. a persistence flag)")
	fs.StringVar(&pgArgs, "pushgateway-args", "", "extra arguments for the Pushgateway, space-separated (default --persistence.file= : in memory; pass --persistence.file=PATH to persist)")
	fs.IntVar(&o.groups, "groups", 1000, "distinct grouping keys (Lambda environments) pushed to in rotation")
	fs.StringVar(&o.job, "job", "checkout-api", "job (function name) of every push")
	fs.BoolVar(&o.prefill, "prefill", true, "push once to every grouping key before the warm-up, so each target is measured holding all the groups (false: the groups fill up during the run)")
	fs.BoolVar(&o.json, "json", false, "print machine-readable results (JSON) on stdout instead of the tables")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: benchcompare [flags]\n\n"+
			"Pushes a Lambda-shaped body from concurrent keep-alive clients to our gateway and to\n"+
			"the Prometheus Pushgateway, one after the other on 127.0.0.1, and prints pushes/s,\n"+
			"p50/p90/p99/max latency, errors and the ratio ours/Pushgateway against the target\n"+
			"(≥ %.0f× the Pushgateway's pushes/s, p99 ≤ %v).\n\nFlags:\n", targetRatio, targetP99)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for f := range strings.SplitSeq(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--concurrency: %q is not a positive number", f)
		}
		o.concurrency = append(o.concurrency, n)
	}
	o.gatewayArgs, o.pushgatewayArgs = strings.Fields(gwArgs), strings.Fields(pgArgs)
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return nil, errors.New("--duration must be positive and --warmup not negative")
	case o.rounds < 1:
		return nil, errors.New("--rounds must be at least 1")
	case o.groups < 1:
		return nil, errors.New("--groups must be at least 1")
	case o.format != "protobuf" && o.format != "text":
		return nil, fmt.Errorf("--format: %q is neither protobuf nor text", o.format)
	}
	return o, nil
}

// Run is one target loaded once.
type Run struct {
	Target      string `json:"target"`
	Concurrency int    `json:"concurrency"`
	Round       int    `json:"round"`
	Stats
	ServerCPU    time.Duration `json:"server_cpu_ns"` // the target's CPU time over the recorded window
	ServerCores  float64       `json:"server_cores"`  // ServerCPU / elapsed
	CPUPerPush   time.Duration `json:"server_cpu_per_push_ns"`
	LoadgenCores float64       `json:"loadgen_cores"`    // this process's CPU over the window / elapsed
	RSSBytes     int64         `json:"server_rss_bytes"` // the target's VmRSS at the end
	LoadAvg      string        `json:"load_avg_after"`   // the machine's, after the run
	Prefill      time.Duration `json:"prefill_ns"`       // pushing once to every group first
}

// Summary is the median over rounds of one target at one concurrency.
type Summary struct {
	Target       string         `json:"target"`
	Concurrency  int            `json:"concurrency"`
	Rounds       int            `json:"rounds"`
	PushesPerSec float64        `json:"pushes_per_sec"`
	P50          time.Duration  `json:"p50_ns"`
	P90          time.Duration  `json:"p90_ns"`
	P99          time.Duration  `json:"p99_ns"`
	Max          time.Duration  `json:"max_ns"`
	Errors       int            `json:"errors"` // all rounds, warm-ups included
	ServerCores  float64        `json:"server_cores"`
	CPUPerPush   time.Duration  `json:"server_cpu_per_push_ns"`
	LoadgenCores float64        `json:"loadgen_cores"`
	RSSBytes     int64          `json:"server_rss_bytes"`
	ErrorSamples map[string]int `json:"error_samples,omitempty"`
}

// Comparison is the verdict at one concurrency.
type Comparison struct {
	Concurrency int     `json:"concurrency"`
	Ratio       float64 `json:"ratio_pushes_per_sec"` // ours / Pushgateway
	OursP99Ms   float64 `json:"ours_p99_ms"`
	RatioMet    bool    `json:"ratio_met"`
	P99Met      bool    `json:"p99_met"`
	Errors      bool    `json:"errors"`
	Met         bool    `json:"met"`
}

// Report is everything --json prints.
type Report struct {
	Command     string       `json:"command"`
	Machine     Machine      `json:"machine"`
	Versions    Versions     `json:"versions"`
	Body        BodyInfo     `json:"body"`
	Load        LoadInfo     `json:"load"`
	Runs        []Run        `json:"runs"`
	Summaries   []Summary    `json:"summaries"`
	Comparisons []Comparison `json:"comparisons,omitempty"`
}

type Machine struct {
	OS, Arch   string
	GOMAXPROCS int
	NumCPU     int
	CPUModel   string
	Kernel     string
	LoadAvg    string // before the run
	GoVersion  string // of this load generator
}

type Versions struct {
	Ours        string `json:"ours"`
	Pushgateway string `json:"pushgateway,omitempty"`
}

type BodyInfo struct {
	Format      string `json:"format"`
	ContentType string `json:"content_type"`
	Bytes       int    `json:"bytes"`
	Families    int    `json:"families"`
	Samples     int    `json:"samples"`
}

type LoadInfo struct {
	Method      string        `json:"method"`
	PathPattern string        `json:"path_pattern"`
	Groups      int           `json:"groups"`
	Concurrency []int         `json:"concurrency"`
	Warmup      time.Duration `json:"warmup_ns"`
	Duration    time.Duration `json:"duration_ns"`
	Rounds      int           `json:"rounds"`
	Prefill     bool          `json:"prefill"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	if _, err := os.Stat(o.gatewayBin); err != nil {
		return 2, fmt.Errorf("our gateway binary: %w (build it with `make build`)", err)
	}
	targets := []Target{{Name: "ours", Bin: o.gatewayBin, Args: o.gatewayArgs}}
	pgBin, err := exec.LookPath(o.pushgatewayBin)
	switch {
	case err != nil && !o.skipMissing:
		return 2, fmt.Errorf("the Pushgateway binary %q was not found (%v).\n"+
			"Install Debian's package (as root): apt-get update && apt-get install -y prometheus-pushgateway\n"+
			"(then stop the service it may start: service prometheus-pushgateway stop), or pass --pushgateway-bin PATH;\n"+
			"--skip-missing measures ours only", o.pushgatewayBin, err)
	case err != nil:
		fmt.Fprintf(stderr, "benchcompare: the Pushgateway binary %q was not found; measuring ours only (install: apt-get install prometheus-pushgateway)\n", o.pushgatewayBin)
	default:
		pgArgs := o.pushgatewayArgs
		if !slices.ContainsFunc(pgArgs, func(a string) bool { return strings.HasPrefix(a, "--persistence.file") }) {
			// Debian's default persists to /var/lib/prometheus: in memory unless asked.
			pgArgs = append([]string{"--persistence.file="}, pgArgs...)
		}
		targets = append(targets, Target{Name: "pushgateway", Bin: pgBin, Args: pgArgs})
	}

	body, err := BuildBody(o.format, o.job)
	if err != nil {
		return 2, err
	}
	paths := groupingPaths(o.job, o.groups)
	rep := Report{
		Command:  strings.Join(append([]string{"benchcompare"}, args...), " "),
		Machine:  machine(),
		Versions: Versions{Ours: ourVersion(o.gatewayBin)},
		Body:     BodyInfo{Format: body.Format, ContentType: body.ContentType, Bytes: len(body.Bytes), Families: body.Families, Samples: body.Samples},
		Load: LoadInfo{Method: "POST", PathPattern: "/metrics/job/" + o.job + "/instance/<environment id>", Groups: o.groups,
			Concurrency: o.concurrency, Warmup: o.warmup, Duration: o.duration, Rounds: o.rounds, Prefill: o.prefill},
	}
	if len(targets) > 1 {
		rep.Versions.Pushgateway = pgBin + ": " + binaryVersion(pgBin)
	}

	for _, c := range o.concurrency {
		for round := 1; round <= o.rounds; round++ {
			for _, t := range targets {
				fmt.Fprintf(stderr, "benchcompare: %s, %d clients, round %d/%d: %v warm-up + %v …\n", t.Name, c, round, o.rounds, o.warmup, o.duration)
				r, err := measure(ctx, t, LoadConfig{Paths: paths, Body: body, Concurrency: c, Warmup: o.warmup, Duration: o.duration}, o.prefill)
				if err != nil {
					return 1, err
				}
				r.Round = round
				fmt.Fprintf(stderr, "benchcompare:   %.0f pushes/s, p50 %s, p99 %s, %d errors, server %.2f cores; groups filled in %v; load average %s\n",
					r.PushesPerSec, ms(r.P50), ms(r.P99), r.Errors+r.WarmupErrors, r.ServerCores, r.Prefill.Round(time.Millisecond), r.LoadAvg)
				rep.Runs = append(rep.Runs, r)
			}
		}
		var ours, pg *Summary
		for _, t := range targets {
			s := summarize(t.Name, c, rep.Runs)
			rep.Summaries = append(rep.Summaries, s)
			if t.Name == "ours" {
				ours = &rep.Summaries[len(rep.Summaries)-1]
			}
		}
		if len(targets) > 1 {
			pg = &rep.Summaries[len(rep.Summaries)-1]
			rep.Comparisons = append(rep.Comparisons, compare(*ours, *pg))
		}
	}

	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return 1, err
		}
	} else {
		printReport(stdout, &rep)
	}
	for _, s := range rep.Summaries {
		if s.Errors > 0 {
			return 1, fmt.Errorf("%s answered %d pushes with errors at %d clients: the run is flagged", s.Target, s.Errors, s.Concurrency)
		}
	}
	return 0, nil
}

// groupingPaths returns n grouping paths of one function's environments.
func groupingPaths(job string, n int) []string {
	paths := make([]string, n)
	for i := range paths {
		// Environment ids look like Lambda's: 32 hex digits.
		paths[i] = fmt.Sprintf("/metrics/job/%s/instance/%08x%024x", job, i, uint64(i)*0x9e3779b97f4a7c15)
	}
	return paths
}

// measure starts t, loads it, stops it.
func measure(ctx context.Context, t Target, cfg LoadConfig, prefill bool) (Run, error) {
	p, err := start(ctx, t)
	if err != nil {
		return Run{}, err
	}
	defer p.stop()
	cfg.BaseURL = p.URL
	var filled time.Duration
	if prefill {
		began := time.Now()
		if err := Prefill(ctx, cfg); err != nil {
			return Run{}, fmt.Errorf("%s: filling the groups: %w", t.Name, err)
		}
		filled = time.Since(began)
	}
	pid, self := p.cmd.Process.Pid, os.Getpid()
	type cpu struct{ server, self time.Duration }
	atStart := make(chan cpu, 1)
	timer := time.AfterFunc(cfg.Warmup, func() { atStart <- cpu{cpuTime(pid), cpuTime(self)} })
	defer timer.Stop()
	st, err := RunLoad(ctx, cfg)
	if err != nil {
		return Run{}, err
	}
	end := cpu{cpuTime(pid), cpuTime(self)}
	begin := <-atStart
	r := Run{Target: t.Name, Concurrency: cfg.Concurrency, Stats: st, RSSBytes: rssBytes(pid), LoadAvg: loadAvg(), Prefill: filled}
	r.ServerCPU = end.server - begin.server
	r.ServerCores = r.ServerCPU.Seconds() / st.Elapsed.Seconds()
	r.LoadgenCores = (end.self - begin.self).Seconds() / st.Elapsed.Seconds()
	if n := st.Pushes + st.Errors; n > 0 {
		r.CPUPerPush = r.ServerCPU / time.Duration(n)
	}
	select {
	case <-p.done:
		return r, fmt.Errorf("%s exited during the load (%v):\n%s", t.Name, p.err, p.logs)
	default:
	}
	return r, nil
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func summarize(target string, c int, runs []Run) Summary {
	s := Summary{Target: target, Concurrency: c}
	var pps, cores, lg []float64
	var p50, p90, p99, mx, cpp []time.Duration
	var rss []int64
	for _, r := range runs {
		if r.Target != target || r.Concurrency != c {
			continue
		}
		s.Rounds++
		pps, cores, lg = append(pps, r.PushesPerSec), append(cores, r.ServerCores), append(lg, r.LoadgenCores)
		p50, p90, p99, mx, cpp = append(p50, r.P50), append(p90, r.P90), append(p99, r.P99), append(mx, r.Max), append(cpp, r.CPUPerPush)
		rss = append(rss, r.RSSBytes)
		s.Errors += r.Errors + r.WarmupErrors
		for k, v := range r.ErrorSamples {
			if s.ErrorSamples == nil {
				s.ErrorSamples = map[string]int{}
			}
			s.ErrorSamples[k] += v
		}
	}
	s.PushesPerSec, s.ServerCores, s.LoadgenCores = median(pps), median(cores), median(lg)
	s.P50, s.P90, s.P99, s.Max, s.CPUPerPush = median(p50), median(p90), median(p99), median(mx), median(cpp)
	s.RSSBytes = median(rss)
	return s
}

func compare(ours, pg Summary) Comparison {
	c := Comparison{Concurrency: ours.Concurrency, OursP99Ms: ours.P99.Seconds() * 1e3}
	if pg.PushesPerSec > 0 {
		c.Ratio = ours.PushesPerSec / pg.PushesPerSec
	}
	c.RatioMet = c.Ratio >= targetRatio
	c.P99Met = ours.P99 <= targetP99
	c.Errors = ours.Errors > 0 || pg.Errors > 0
	c.Met = c.RatioMet && c.P99Met && !c.Errors
	return c
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", d.Seconds()*1e3) }

func printReport(w io.Writer, rep *Report) {
	m := rep.Machine
	fmt.Fprintf(w, "machine:     %s/%s, GOMAXPROCS %d, %d CPUs, %s, kernel %s, load average %s (before)\n", m.OS, m.Arch, m.GOMAXPROCS, m.NumCPU, m.CPUModel, m.Kernel, m.LoadAvg)
	fmt.Fprintf(w, "ours:        %s\n", rep.Versions.Ours)
	if rep.Versions.Pushgateway != "" {
		fmt.Fprintf(w, "pushgateway: %s\n", rep.Versions.Pushgateway)
	}
	b, l := rep.Body, rep.Load
	fmt.Fprintf(w, "body:        %s (%s), %d bytes, %d families, %d samples\n", b.Format, b.ContentType, b.Bytes, b.Families, b.Samples)
	filled := "filled during the run"
	if l.Prefill {
		filled = "each pushed once before the warm-up"
	}
	fmt.Fprintf(w, "load:        %s %s, %d grouping keys in rotation (%s); closed-loop keep-alive clients; %v warm-up + %v per target and round; %d round(s), medians; load generator %s\n\n",
		l.Method, l.PathPattern, l.Groups, filled, l.Warmup, l.Duration, l.Rounds, m.GoVersion)
	for _, c := range l.Concurrency {
		fmt.Fprintf(w, "%d clients:\n", c)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "target\tpushes/s\tp50\tp90\tp99\tmax\terrors\tserver CPU\tCPU/push\tRSS\tload gen CPU\t")
		for _, s := range rep.Summaries {
			if s.Concurrency != c {
				continue
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%.2f cores\t%.1f µs\t%.1f MiB\t%.2f cores\t\n", s.Target, s.PushesPerSec,
				ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), s.Errors, s.ServerCores, float64(s.CPUPerPush)/1e3, float64(s.RSSBytes)/(1<<20), s.LoadgenCores)
		}
		_ = tw.Flush()
		for _, s := range rep.Summaries {
			if s.Concurrency == c && s.Errors > 0 {
				fmt.Fprintf(w, "  FLAGGED: %s answered %d pushes with errors:\n", s.Target, s.Errors)
				for msg, n := range s.ErrorSamples {
					fmt.Fprintf(w, "    %6d × %s\n", n, msg)
				}
			}
		}
		for _, cmp := range rep.Comparisons {
			if cmp.Concurrency != c {
				continue
			}
			verdict := "MET"
			if !cmp.Met {
				var why []string
				if !cmp.RatioMet {
					why = append(why, fmt.Sprintf("ratio %.1f× < %.0f×", cmp.Ratio, targetRatio))
				}
				if !cmp.P99Met {
					why = append(why, fmt.Sprintf("p99 %.3f ms > %v", cmp.OursP99Ms, targetP99))
				}
				if cmp.Errors {
					why = append(why, "errors")
				}
				verdict = "NOT MET (" + strings.Join(why, ", ") + ")"
			}
			fmt.Fprintf(w, "ours/pushgateway: %.1f× pushes/s; ours p99 %.3f ms; target ≥ %.0f× with p99 ≤ %v: %s\n",
				cmp.Ratio, cmp.OursP99Ms, targetRatio, targetP99, verdict)
		}
		fmt.Fprintln(w)
	}
}

func machine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvg = loadAvg()
	return m
}

// loadAvg returns the 1, 5 and 15 minute load averages ("" if unknown).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// ourVersion describes our binary from its embedded build information.
func ourVersion(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return bin + ": build info unreadable: " + err.Error()
	}
	s := fmt.Sprintf("%s: %s %s, %s", bin, bi.Main.Path, bi.Main.Version, bi.GoVersion)
	var rev, modified, at string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			modified = kv.Value
		case "vcs.time":
			at = kv.Value
		}
	}
	if rev != "" {
		s += ", revision " + rev[:min(12, len(rev))]
		if modified == "true" {
			s += " (modified)"
		}
		if at != "" {
			s += " of " + at
		}
	}
	if fi, err := os.Stat(bin); err == nil {
		s += ", built " + fi.ModTime().UTC().Format(time.RFC3339)
	}
	return s
}
