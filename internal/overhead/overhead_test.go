package overhead

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/harness"
	"github.com/prometheus-lambda/prometheus-lambda/internal/secretsmanagertest"
)

var extensionFlag = flag.String("extension", "", "the extension binary to measure (default: build one as `make build` does)")

const (
	// startSamples is how many processes one BenchmarkStart iteration starts.
	startSamples = 20
	// invocations is how many INVOKEs one BenchmarkInvocations iteration
	// (one execution environment) hands out before reading the memory.
	invocations = 10_000
)

// buildArgs are `make build`'s for bin/extension (Makefile: GOFLAGS_BUILD,
// EXTENSION_TAGS), run with CGO_ENABLED=0; keep them in step.
var buildArgs = []string{"build", "-trimpath", "-tags", harness.ExtensionTags, "-ldflags=-s -w"}

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// extensionBinary returns -extension, or builds the extension once.
func extensionBinary(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		if *extensionFlag != "" {
			binary, buildErr = filepath.Abs(*extensionFlag)
			if buildErr == nil {
				_, buildErr = os.Stat(binary)
			}
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "overhead-bench"); buildErr != nil {
			return
		}
		// The name it registers under, as in /opt/extensions/.
		binary = filepath.Join(buildDir, "prometheus-lambda-extension")
		cmd := exec.Command("go", append(buildArgs, "-o", binary, "./extension/cmd/extension")...)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build the extension: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binary
}

// lambdaEnv is what Lambda gives every extension, plus the extension's
// settings for a local run.
func lambdaEnv(gatewayURL string, extra ...string) []string {
	return append([]string{
		"AWS_REGION=eu-west-1",
		"AWS_DEFAULT_REGION=eu-west-1",
		"AWS_LAMBDA_FUNCTION_NAME=overhead-bench",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"GATEWAY=" + gatewayURL,
		"TELEMETRY_LISTENER_ADDRESS=127.0.0.1:0",
	}, extra...)
}

// quantile returns the q-quantile (nearest rank) of ds, which it sorts.
func quantile(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func µs(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func mib(n int64) float64        { return float64(n) / (1 << 20) }

// BenchmarkStart measures init: from starting the process to its first
// /event/next, registration and Telemetry API subscription included. With
// AUTH_SECRET the secret is read meanwhile, from a local Secrets Manager.
func BenchmarkStart(b *testing.B) {
	bin := extensionBinary(b)
	gw, err := newGatewayStub()
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	sm := secretsmanagertest.NewServer(map[string]string{"gateway-auth": `{"username":"lambda","password":"s3cr3t"}`})
	defer sm.Close()
	var tlsReads atomic.Int64
	smTLS, roots, err := tlsSecretsManager(b.TempDir(), &tlsReads)
	if err != nil {
		b.Fatal(err)
	}
	defer smTLS.Close()
	awsEnv := []string{
		"AUTH_SECRET=" + secretsmanagertest.ARN("gateway-auth"),
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		"AWS_SESSION_TOKEN=session-token",
	}

	for _, c := range []struct {
		name  string
		env   []string
		reads func() int64 // secrets read, nil without AUTH_SECRET
	}{
		{"auth=none", lambdaEnv(gw.url), nil},
		{"auth=secret", lambdaEnv(gw.url, append(awsEnv, "AWS_ENDPOINT_URL_SECRETS_MANAGER="+sm.URL())...),
			func() int64 { return int64(sm.Requests()) }},
		// Over HTTPS as in Lambda: the secret's read then also loads the
		// system's root certificates and makes a TLS handshake.
		{"auth=secret-https", lambdaEnv(gw.url, append(awsEnv, "AWS_ENDPOINT_URL_SECRETS_MANAGER="+smTLS.URL, "SSL_CERT_FILE="+roots)...),
			tlsReads.Load},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.reads != nil {
				checkSecretRead(b, bin, c.env, c.reads)
			}
			var starts, registers []time.Duration
			for b.Loop() {
				for range startSamples {
					e, reg, first, err := startEnvironment(context.Background(), bin, c.env)
					if err != nil {
						b.Fatal(err)
					}
					starts, registers = append(starts, first), append(registers, reg)
					if err := e.shutdown(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(quantile(starts, 0.5)), "ms/start")
			b.ReportMetric(ms(quantile(starts, 0.9)), "ms/start-p90")
			b.ReportMetric(ms(quantile(registers, 0.5)), "ms/register")
		})
	}
}

// checkSecretRead runs the extension once until it has read the secret:
// in the measured starts the read, running alongside init, is usually cut
// short by the SHUTDOWN that follows the first /event/next.
func checkSecretRead(b *testing.B, bin string, env []string, reads func() int64) {
	b.Helper()
	before := reads()
	e, _, _, err := startEnvironment(context.Background(), bin, env)
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); reads() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			e.close()
			b.Fatalf("the extension did not read the secret within 5s\n%s", e.proc.output)
		}
	}
	if err := e.shutdown(); err != nil {
		b.Fatal(err)
	}
}

// tlsSecretsManager serves GetSecretValue over HTTPS on loopback. roots is
// a CA bundle for SSL_CERT_FILE: the system's (as many certificates as the
// extension parses in Lambda) plus the server's.
func tlsSecretsManager(dir string, reads *atomic.Int64) (srv *httptest.Server, roots string, err error) {
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reads.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"Name":"gateway-auth","SecretString":"{\"username\":\"lambda\",\"password\":\"s3cr3t\"}"}`)
	}))
	// Handshakes cut short by the extension's exit are expected.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	bundle, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt") // Debian's; empty elsewhere
	bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})...)
	roots = filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(roots, bundle, 0o600); err != nil {
		srv.Close()
		return nil, "", err
	}
	return srv, roots, nil
}

// BenchmarkInvocations runs one execution environment through 10,000
// invocations, each with its telemetry batch, and measures the INVOKE →
// /event/next time and the memory after them: without a dispatch
// (DISPATCH_MIN_BATCH_SIZE far above the 40,000 events), and with a push to
// a loopback gateway stub at every INVOKE (DISPATCH_MIN_BATCH_SIZE=1).
func BenchmarkInvocations(b *testing.B) {
	bin := extensionBinary(b)
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc/<pid>/status (Linux)")
	}
	for _, c := range []struct {
		name     string
		minBatch string
		dispatch bool
	}{
		{"dispatch=none", "1000000", false},
		{"dispatch=every", "1", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			gw, err := newGatewayStub()
			if err != nil {
				b.Fatal(err)
			}
			defer gw.Close()
			var times []time.Duration
			var mem, initMem memory
			runs := 0
			for b.Loop() {
				gw.pushes.Store(0)
				e, _, _, err := startEnvironment(context.Background(), bin, lambdaEnv(gw.url, "DISPATCH_MIN_BATCH_SIZE="+c.minBatch))
				if err != nil {
					b.Fatal(err)
				}
				m0, err := e.proc.memory()
				if err != nil {
					e.close()
					b.Fatal(err)
				}
				for range invocations {
					d, err := e.invoke()
					if err != nil {
						e.close()
						b.Fatalf("%v\n%s", err, e.proc.output)
					}
					times = append(times, d)
				}
				m, err := e.proc.memory()
				if err != nil {
					e.close()
					b.Fatal(err)
				}
				pushes := gw.pushes.Load()
				if err := e.shutdown(); err != nil {
					b.Fatal(err)
				}
				if c.dispatch && pushes < invocations || !c.dispatch && pushes != 0 {
					b.Fatalf("%d pushes during %d invocations with DISPATCH_MIN_BATCH_SIZE=%s", pushes, invocations, c.minBatch)
				}
				mem.RSS, mem.HWM, mem.Anon = mem.RSS+m.RSS, mem.HWM+m.HWM, mem.Anon+m.Anon
				initMem.RSS, initMem.Anon = initMem.RSS+m0.RSS, initMem.Anon+m0.Anon
				runs++
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(µs(quantile(times, 0.5)), "µs/invoke")
			b.ReportMetric(µs(quantile(times, 0.99)), "µs/invoke-p99")
			n := int64(runs)
			b.ReportMetric(mib(initMem.RSS/n), "MiB-rss-init")
			b.ReportMetric(mib(initMem.Anon/n), "MiB-anon-init")
			b.ReportMetric(mib(mem.RSS/n), "MiB-rss")
			b.ReportMetric(mib(mem.HWM/n), "MiB-hwm")
			b.ReportMetric(mib(mem.Anon/n), "MiB-anon")
		})
	}
}

// BenchmarkBinarySize reports the size of the binary measured (stripped,
// as `make build` makes it, unless -extension names another).
func BenchmarkBinarySize(b *testing.B) {
	fi, err := os.Stat(extensionBinary(b))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(fi.Size()), "B-binary")
}
