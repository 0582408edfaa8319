package deploy_test

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
)

// There is no Docker engine here: these tests read the Dockerfile, the
// compose file and the configurations it mounts, check how they fit
// together, and run what can run without a container — the Dockerfile's
// build commands and the real gateway with the flags the image and the
// stack pass it.

const root = ".." // the module root: the image's build context

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper-cased: FROM, RUN, COPY, ...
	args string
}

type stage struct {
	name         string
	from         string
	instructions []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// last returns the stage's last instruction cmd (the one that counts for
// USER, ENTRYPOINT, CMD, HEALTHCHECK...), failing the test when absent.
func (s stage) last(t *testing.T, cmd string) instruction {
	t.Helper()
	all := s.all(cmd)
	if len(all) == 0 {
		t.Fatalf("stage %q has no %s", s.from, cmd)
	}
	return all[len(all)-1]
}

// parseDockerfile is a line parser good enough for our Dockerfile: comments,
// parser directives, backslash continuations, one stage per FROM.
func parseDockerfile(t *testing.T, file string) []stage {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			fields = slices.DeleteFunc(fields, func(f string) bool { return strings.HasPrefix(f, "--") })
			s := stage{from: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("%s before the first FROM", in.cmd)
			}
			return
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(stages))
	}
	return stages
}

// execForm decodes a JSON-array (exec form) argument list.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s %s is not in exec form (a JSON array): a shell would be PID 1 and swallow SIGTERM, and distroless has none", in.cmd, in.args)
	}
	return argv
}

// copies maps each destination in the stage to its COPY instruction's
// source and flags.
type copied struct {
	from, src, chown string
}

func copies(t *testing.T, s stage) map[string]copied {
	t.Helper()
	out := map[string]copied{}
	for _, in := range s.all("COPY") {
		var c copied
		var rest []string
		for _, f := range strings.Fields(in.args) {
			switch {
			case strings.HasPrefix(f, "--from="):
				c.from = strings.TrimPrefix(f, "--from=")
			case strings.HasPrefix(f, "--chown="):
				c.chown = strings.TrimPrefix(f, "--chown=")
			case strings.HasPrefix(f, "--"):
			default:
				rest = append(rest, f)
			}
		}
		if len(rest) != 2 {
			continue // several sources into a directory: not a binary we look up
		}
		c.src = rest[0]
		out[rest[1]] = c
	}
	return out
}

// gatewayDefaultPort reads the default of --web.listen-address from the real
// gateway's --help.
func gatewayDefaultPort(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("gateway --help: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`--web\.listen-address=(\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no --web.listen-address default in gateway --help:\n%s", out)
	}
	_, port, err := net.SplitHostPort(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// builtImage runs the Dockerfile's build stage RUN commands on this
// machine, with /out (the stage's output directory) mapped to a temporary
// one, for the host's OS and architecture: what the image would copy.
type builtImage struct {
	stages []stage
	final  stage
	out    string // the build stage's /out
}

var buildOut = regexp.MustCompile(`/out\b`)

func buildImageBinaries(t *testing.T) builtImage {
	t.Helper()
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	b := builtImage{stages: stages, final: stages[len(stages)-1], out: t.TempDir()}
	build := stages[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, run := range build.all("RUN") {
		if strings.Contains(run.args, "go mod download") {
			continue // the module cache is there already
		}
		script := buildOut.ReplaceAllString(run.args, b.out)
		cmd := exec.CommandContext(ctx, "sh", "-c", script)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("RUN %s: %v\n%s", script, err, out)
		}
	}
	return b
}

// binary returns where the build put the file the final stage copies to dst.
func (b builtImage) binary(t *testing.T, dst string) string {
	t.Helper()
	c, ok := copies(t, b.final)[dst]
	if !ok {
		t.Fatalf("the final stage copies nothing to %s", dst)
	}
	if c.from != b.stages[0].name || !strings.HasPrefix(c.src, "/out/") {
		t.Fatalf("%s is copied from %s:%s, not from the build stage's /out", dst, c.from, c.src)
	}
	return filepath.Join(b.out, strings.TrimPrefix(c.src, "/out/"))
}

func TestDockerfile(t *testing.T) {
	b := buildImageBinaries(t)
	build, final := b.stages[0], b.final

	// Build stage: the gateway's command, static.
	runs := ""
	for _, r := range build.all("RUN") {
		runs += r.args + "\n"
	}
	gatewayBuild := regexp.MustCompile(`CGO_ENABLED=0 [^&]*go build [^&]*-o /out/gateway \./gateway/cmd/gateway`)
	if !gatewayBuild.MatchString(runs) {
		t.Errorf("the build stage does not build ./gateway/cmd/gateway with CGO_ENABLED=0 into /out/gateway:\n%s", runs)
	}
	if !strings.HasPrefix(build.from, "golang:") {
		t.Errorf("build stage FROM %s, want the golang image", build.from)
	}

	// Final stage: distroless or scratch, non-root.
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s, want distroless static or scratch", final.from)
	}
	user := final.last(t, "USER").args
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("USER %s: the gateway must not run as root", user)
	}

	gatewayBin := b.binary(t, "/gateway")
	healthBin := b.binary(t, "/healthcheck")
	for _, bin := range []string{gatewayBin, healthBin} {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked: distroless static has no libc", filepath.Base(bin))
			}
		}
		f.Close()
	}

	// The data directory for a volume, owned by the image's user.
	if c, ok := copies(t, final)["/data"]; !ok || c.chown != user {
		t.Errorf("/data is not copied with --chown=%s (got %+v)", user, c)
	}

	// Port: the gateway's own default, exposed and checked.
	port := gatewayDefaultPort(t, gatewayBin)
	if got := final.last(t, "EXPOSE").args; got != port && got != port+"/tcp" {
		t.Errorf("EXPOSE %s, the gateway listens on %s by default", got, port)
	}

	// ENTRYPOINT and CMD: exec form, the gateway itself as PID 1.
	entry := execForm(t, final.last(t, "ENTRYPOINT"))
	if len(entry) != 1 || entry[0] != "/gateway" {
		t.Errorf("ENTRYPOINT %v, want [\"/gateway\"]", entry)
	}
	cmdArgs := execForm(t, final.last(t, "CMD"))
	if v := flagValue(cmdArgs, "--persistence.dir"); v != "" {
		if c, ok := copies(t, final)[v]; !ok || c.chown != user {
			t.Errorf("--persistence.dir=%s is not a directory of the image owned by %s", v, user)
		}
	}
	if sig := final.all("STOPSIGNAL"); len(sig) > 0 && sig[len(sig)-1].args != "SIGTERM" {
		t.Errorf("STOPSIGNAL %s: the gateway shuts down gracefully on SIGTERM", sig[len(sig)-1].args)
	}

	// HEALTHCHECK: exec form, our binary, the gateway's readiness at its port.
	hc := final.last(t, "HEALTHCHECK")
	_, after, ok := strings.Cut(hc.args, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s has no CMD", hc.args)
	}
	hcArgv := execForm(t, instruction{cmd: "HEALTHCHECK CMD", args: strings.TrimSpace(after)})
	if hcArgv[0] != "/healthcheck" || len(hcArgv) != 2 || hcArgv[1] != "http://127.0.0.1:"+port+"/-/ready" {
		t.Errorf("HEALTHCHECK CMD %v, want [/healthcheck http://127.0.0.1:%s/-/ready]", hcArgv, port)
	}

	// Run them: the gateway with the image's CMD (on a loopback port), and
	// the health check against it, as docker would.
	g := startWithFlags(t, gatewayBin, cmdArgs, port)
	if out, err := exec.Command(healthBin, g.URL+"/-/ready").CombinedOutput(); err != nil {
		t.Errorf("the image's healthcheck binary against the image's gateway: %v\n%s", err, out)
	}
	if err := g.Stop(); err != nil {
		t.Errorf("gateway did not stop cleanly on SIGINT: %v", err)
	}
	if out, err := exec.Command(healthBin, g.URL+"/-/ready").CombinedOutput(); err == nil {
		t.Errorf("healthcheck passed with the gateway stopped\n%s", out)
	}
}

// TestDockerStopSIGTERM: docker stop sends SIGTERM to PID 1, the
// gateway (exec-form ENTRYPOINT); it must exit 0 promptly.
func TestDockerStopSIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := harness.Build(ctx, root, "./gateway/cmd/gateway", t.TempDir(), "gateway")
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--web.listen-address="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitReady(t, "http://"+addr, done)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gateway exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("gateway still running 15s after SIGTERM")
	}
}

// startWithFlags starts the gateway with flags as given to the container,
// except that --web.listen-address (checked to be on port) becomes a
// loopback port and container paths under /data a temporary directory.
func startWithFlags(t *testing.T, bin string, flags []string, port string) *harness.Gateway {
	t.Helper()
	var args []string
	dataDir := t.TempDir()
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--web.listen-address="); ok {
			if _, p, err := net.SplitHostPort(v); err != nil || p != port {
				t.Errorf("flag %s: the image exposes and health-checks %s", f, port)
			}
			continue
		}
		if name, v, ok := strings.Cut(f, "="); ok && (v == "/data" || strings.HasPrefix(v, "/data/")) {
			f = name + "=" + filepath.Join(dataDir, strings.TrimPrefix(v, "/data"))
		}
		args = append(args, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := &harness.LogBuffer{}
	g, err := harness.StartGateway(ctx, bin, logs, args...)
	if err != nil {
		t.Fatalf("the gateway does not start with %v: %v\n%s", flags, err, logs)
	}
	return g
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(t *testing.T, url string, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/-/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("gateway exited before ready: %v", err)
		case <-ctx.Done():
			t.Fatal("gateway not ready within 30s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// composeFile is the part of the compose specification the stack uses.
type composeFile struct {
	Name     string `yaml:"name"`
	Services map[string]struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"`
		StopGrace   string            `yaml:"stop_grace_period"`
		Restart     string            `yaml:"restart"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// mounts returns a service's volumes as container path -> host source
// (relative to deploy/ for bind mounts, a volume name otherwise).
func mounts(t *testing.T, c composeFile, service string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range c.Services[service].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Fatalf("%s: volume %q has no container path", service, v)
		}
		src, dst := parts[0], parts[1]
		if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
			if _, err := os.Stat(src); err != nil {
				t.Errorf("%s: bind mount source %s: %v", service, src, err)
			}
		} else if _, ok := c.Volumes[src]; !ok {
			t.Errorf("%s: named volume %s is not declared under volumes", service, src)
		}
		out[dst] = src
	}
	return out
}

// hostPath maps a container path of service to the repository file behind
// it, through the service's bind mounts ("" when none covers it).
func hostPath(m map[string]string, containerPath string) string {
	best := ""
	for dst := range m {
		if (containerPath == dst || strings.HasPrefix(containerPath, dst+"/")) && len(dst) > len(best) {
			best = dst
		}
	}
	if best == "" || !strings.HasPrefix(m[best], ".") {
		return ""
	}
	return filepath.Join(m[best], strings.TrimPrefix(containerPath, best))
}

// prometheusConfig is the part of prometheus.yml the stack uses.
type prometheusConfig struct {
	Global        map[string]string `yaml:"global"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		HonorLabels   bool   `yaml:"honor_labels"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func TestCompose(t *testing.T) {
	var c composeFile
	readYAML(t, "compose.yaml", &c)
	for _, s := range []string{"gateway", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("compose.yaml has no %s service", s)
		}
	}
	for name, s := range c.Services {
		if s.Image != "" && s.Build == nil {
			if _, tag, ok := strings.Cut(path.Base(s.Image), ":"); !ok || tag == "latest" {
				t.Errorf("%s: image %s is not pinned to a version", name, s.Image)
			}
		}
	}

	// The gateway: built from the repository's Dockerfile; every flag
	// accepted by the real binary; its port published.
	gw := c.Services["gateway"]
	if gw.Build == nil || filepath.Join(gw.Build.Context, gw.Build.Dockerfile) != filepath.Join(root, "Dockerfile") {
		t.Fatalf("gateway is not built from the repository's Dockerfile: %+v", gw.Build)
	}
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	port := strings.Fields(stages[len(stages)-1].last(t, "EXPOSE").args)[0]
	if !slices.Contains(gw.Ports, port+":"+port) {
		t.Errorf("gateway ports %v do not publish %s", gw.Ports, port)
	}
	// The gateway lets in-flight requests finish for up to 10 s after
	// SIGTERM: docker's default 10 s grace would cut that short.
	if d, err := time.ParseDuration(gw.StopGrace); err != nil || d <= 10*time.Second {
		t.Errorf("gateway stop_grace_period %q, want more than the gateway's 10 s shutdown timeout", gw.StopGrace)
	}
	gwMounts := mounts(t, c, "gateway")
	if v := flagValue(gw.Command, "--persistence.dir"); v != "" {
		if _, ok := gwMounts[v]; !ok {
			t.Errorf("--persistence.dir=%s is not a volume of the gateway service (%v)", v, gwMounts)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := harness.Build(ctx, root, "./gateway/cmd/gateway", t.TempDir(), "gateway")
	if err != nil {
		t.Fatal(err)
	}
	g := startWithFlags(t, bin, gw.Command, port)
	if err := g.Stop(); err != nil {
		t.Errorf("gateway with the compose flags did not stop cleanly: %v", err)
	}

	// Prometheus: its config file is the mounted deploy/prometheus/prometheus.yml,
	// scraping the gateway service with honor_labels.
	prom := c.Services["prometheus"]
	promMounts := mounts(t, c, "prometheus")
	confPath := flagValue(prom.Command, "--config.file")
	if confPath == "" {
		confPath = "/etc/prometheus/prometheus.yml" // the image's default
	}
	hostConf := hostPath(promMounts, confPath)
	if filepath.Clean(hostConf) != filepath.Join("prometheus", "prometheus.yml") {
		t.Fatalf("prometheus reads %s, mounted from %q, not deploy/prometheus/prometheus.yml", confPath, hostConf)
	}
	if v := flagValue(prom.Command, "--storage.tsdb.path"); v != "" {
		if _, ok := promMounts[v]; !ok {
			t.Errorf("prometheus storage %s is not on a volume", v)
		}
	}
	var pc prometheusConfig
	readYAML(t, hostConf, &pc)
	var gatewayJob string
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, "gateway:"+port) {
				gatewayJob = sc.JobName
				if !sc.HonorLabels {
					t.Errorf("job %s scrapes the gateway without honor_labels: true: the pushed job label would be overwritten", sc.JobName)
				}
			}
		}
	}
	if gatewayJob == "" {
		t.Fatalf("no scrape config targets gateway:%s", port)
	}
	promPort := "9090" // prometheus's default --web.listen-address
	if v := flagValue(prom.Command, "--web.listen-address"); v != "" {
		_, promPort, _ = net.SplitHostPort(v)
	}

	// Grafana: data source at the prometheus service, dashboards provider
	// on the mounted directory holding lambda.json.
	graf := c.Services["grafana"]
	gMounts := mounts(t, c, "grafana")
	provDir := hostPath(gMounts, "/etc/grafana/provisioning")
	if provDir == "" {
		t.Fatal("grafana's /etc/grafana/provisioning is not mounted from the repository")
	}
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string         `yaml:"name"`
			UID       string         `yaml:"uid"`
			Type      string         `yaml:"type"`
			Access    string         `yaml:"access"`
			URL       string         `yaml:"url"`
			IsDefault bool           `yaml:"isDefault"`
			Editable  bool           `yaml:"editable"`
			JSONData  map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(provDir, "datasources", "prometheus.yaml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("want one prometheus data source, got %+v", ds.Datasources)
	}
	if want := "http://prometheus:" + promPort; ds.Datasources[0].URL != want {
		t.Errorf("data source URL %s, want %s (the prometheus service)", ds.Datasources[0].URL, want)
	}
	if ti, _ := ds.Datasources[0].JSONData["timeInterval"].(string); ti != pc.Global["scrape_interval"] {
		t.Errorf("data source timeInterval %q, want prometheus.yml's scrape_interval %q", ti, pc.Global["scrape_interval"])
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name            string            `yaml:"name"`
			Folder          string            `yaml:"folder"`
			Type            string            `yaml:"type"`
			DisableDeletion bool              `yaml:"disableDeletion"`
			AllowUIUpdates  bool              `yaml:"allowUiUpdates"`
			Options         map[string]string `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(provDir, "dashboards", "dashboards.yaml"), &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("want one file dashboards provider, got %+v", dp.Providers)
	}
	dashDir := hostPath(gMounts, dp.Providers[0].Options["path"])
	if filepath.Clean(dashDir) != filepath.Join("grafana", "dashboards") {
		t.Fatalf("dashboards provider reads %s, mounted from %q, not deploy/grafana/dashboards", dp.Providers[0].Options["path"], dashDir)
	}
	if home := graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if p := hostPath(gMounts, home); p == "" {
			t.Errorf("home dashboard %s is not a mounted file", home)
		} else if _, err := os.Stat(p); err != nil {
			t.Errorf("home dashboard: %v", err)
		}
	}
	checkDashboard(t, filepath.Join(dashDir, "lambda.json"), ds.Datasources[0].UID, gatewayJob)
}

var (
	metricName = regexp.MustCompile(`\b(aws_lambda_[a-z0-9_]+|gateway_[a-z0-9_]+|orders_placed_total|payment_latency_seconds_bucket)\b`)
	jobMatcher = regexp.MustCompile(`job="([^"]*)"`)
)

// checkDashboard: every query uses the provisioned data source, selects the
// gateway's job by the scrape config's name, and names metrics the README
// documents (histogram series by their family); the panels exist.
func checkDashboard(t *testing.T, file, dsUID, gatewayJob string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				AllValue   string `json:"allValue"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if d.UID == "" {
		t.Error("dashboard has no uid")
	}
	if len(d.Templating.List) == 0 || d.Templating.List[0].Name != "function" || d.Templating.List[0].AllValue != ".*" || d.Templating.List[0].Datasource.UID != dsUID {
		t.Errorf("want a $function variable (All = .*) on data source %s: %+v", dsUID, d.Templating.List)
	}
	titles := map[string]bool{}
	var exprs int
	for _, p := range d.Panels {
		titles[p.Title] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != dsUID {
			t.Errorf("panel %q: data source %q, want the provisioned %q", p.Title, p.Datasource.UID, dsUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs++
			if tg.Datasource.UID != dsUID {
				t.Errorf("panel %q: a query's data source %q, want %q", p.Title, tg.Datasource.UID, dsUID)
			}
			for _, m := range jobMatcher.FindAllStringSubmatch(tg.Expr, -1) {
				if m[1] != gatewayJob {
					t.Errorf("panel %q selects job=%q; the scrape config's gateway job is %q", p.Title, m[1], gatewayJob)
				}
			}
			if strings.Contains(tg.Expr, "function_name") && !strings.Contains(tg.Expr, `function_name=~"$function"`) {
				t.Errorf("panel %q: query ignores the $function variable: %s", p.Title, tg.Expr)
			}
			for _, name := range metricName.FindAllString(tg.Expr, -1) {
				family := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					family = strings.TrimSuffix(family, suffix)
				}
				if !documented(string(readme), family) && !documented(string(readme), name) {
					t.Errorf("panel %q: metric %s (family %s) is not documented in the README", p.Title, name, family)
				}
			}
		}
	}
	for _, want := range []string{
		"Invocations by status", "Error rate", "Duration p50 / p90 / p99", "Billed duration p50 / p90 / p99",
		"Cold starts", "Init duration p50 / p99", "Max memory used vs memory size", "Estimated cost per day",
		"Orders placed (custom counter)", "Dropped logs", "Gateway up", "Pushes by result",
	} {
		if !titles[want] {
			t.Errorf("dashboard has no panel %q", want)
		}
	}
	if exprs == 0 {
		t.Fatal("dashboard has no queries")
	}
}

// documented tells whether the README names metric as a whole word.
func documented(readme, metric string) bool {
	return regexp.MustCompile(`(^|[^a-z0-9_])` + regexp.QuoteMeta(metric) + `([^a-z0-9_]|$)`).MatchString(readme)
}

// TestDockerignore: the build context keeps everything the image's go
// builds read — go.mod, go.sum and every package of the module the gateway
// and the health check import — while leaving out binaries and the Git
// history.
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore exception %q: this check does not model them", line)
		}
		patterns = append(patterns, strings.TrimPrefix(filepath.Clean(line), "/"))
	}
	// excluded reports whether a pattern matches p or one of its parents
	// (docker excludes a directory's whole tree); **/ matches any depth.
	excluded := func(p string) string {
		parts := strings.Split(p, "/")
		for _, pat := range patterns {
			for i := 1; i <= len(parts); i++ {
				prefix := strings.Join(parts[:i], "/")
				if ok, _ := path.Match(pat, prefix); ok {
					return pat
				}
				if rest, ok := strings.CutPrefix(pat, "**/"); ok {
					if m, _ := path.Match(rest, parts[i-1]); m {
						return pat
					}
				}
			}
		}
		return ""
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "../gateway/cmd/gateway", "./healthcheck").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/prometheus-lambda/prometheus-lambda"
	need := []string{"go.mod", "go.sum"}
	for _, pkg := range strings.Fields(string(out)) {
		if rel, ok := strings.CutPrefix(pkg, module+"/"); ok {
			need = append(need, rel+"/x.go")
		}
	}
	for _, p := range need {
		if pat := excluded(p); pat != "" {
			t.Errorf(".dockerignore pattern %q excludes %s, which the image build needs", pat, p)
		}
	}
	for _, p := range []string{".git/HEAD", "bin/gateway", "gateway.test", "compat/node/node_modules/x"} {
		if excluded(p) == "" {
			t.Errorf("%s is in the build context", p)
		}
	}
}
