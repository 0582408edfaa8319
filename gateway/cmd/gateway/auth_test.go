package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// send makes a request with an optional Authorization header value.
func send(t *testing.T, client *http.Client, method, url, body, authorization string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func basicHeader(user, password string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

// TestRunAuthPolicy: with basic_auth_users in the web config, health checks
// need no credentials, pushes always do, and reads do unless
// --no-web.auth-scrape.
func TestRunAuthPolicy(t *testing.T) {
	cfg := writeFile(t, filepath.Join(t.TempDir(), "web.yml"), "basic_auth_users:\n  alice: "+bcryptHash(t, "wonder")+"\n")
	good := basicHeader("alice", "wonder")
	for _, c := range []struct {
		args   []string
		scrape bool // reads need credentials
	}{
		{nil, true}, // the default
		{[]string{"--web.auth-scrape"}, true},
		{[]string{"--no-web.auth-scrape"}, false},
	} {
		t.Run(strings.Join(append([]string{"args"}, c.args...), " "), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			base, done := startRun(t, ctx, append([]string{"--web.config.file=" + cfg}, c.args...)...)
			cl := http.DefaultClient
			for _, p := range []string{"/-/healthy", "/-/ready"} {
				if code := send(t, cl, "GET", base+p, "", ""); code != 200 {
					t.Errorf("%s without credentials: %d, want 200", p, code)
				}
			}
			if code := send(t, cl, "POST", base+"/metrics/job/j", "m_total 1\n", ""); code != 401 {
				t.Errorf("push without credentials: %d, want 401", code)
			}
			if code := send(t, cl, "POST", base+"/metrics/job/j", "m_total 1\n", basicHeader("alice", "nope")); code != 401 {
				t.Errorf("push with a wrong password: %d, want 401", code)
			}
			if code := send(t, cl, "DELETE", base+"/metrics/job/x", "", ""); code != 401 {
				t.Errorf("delete without credentials: %d, want 401", code)
			}
			if code := send(t, cl, "POST", base+"/metrics/job/j", "m_total 1\n", good); code != 200 {
				t.Errorf("push with credentials: %d, want 200", code)
			}
			wantRead := 200
			if c.scrape {
				wantRead = 401
			}
			for _, p := range []string{"/metrics", "/status", "/api/v1/metrics", "/api/v1/status"} {
				if code := send(t, cl, "GET", base+p, "", ""); code != wantRead {
					t.Errorf("GET %s without credentials: %d, want %d", p, code, wantRead)
				}
				if code := send(t, cl, "GET", base+p, "", good); code != 200 {
					t.Errorf("GET %s with credentials: %d, want 200", p, code)
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}

// TestRunGravelBasicAuthFile: Gravel Gateway's --basic-auth-file, with the
// headers its users send: curl -H "Authorization: Basic <password>" (raw),
// and any user name with the password (curl -u, Python prometheus_client's
// basic_auth_handler, client_golang's BasicAuth).
func TestRunGravelBasicAuthFile(t *testing.T) {
	file := writeFile(t, filepath.Join(t.TempDir(), "gravel-auth"), "\n"+bcryptHash(t, "old-one")+"\n"+bcryptHash(t, "s3cret")+"\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := startRun(t, ctx, "--basic-auth-file="+file, "--no-web.auth-scrape")
	for _, c := range []struct {
		name, header string
		want         int
	}{
		{"none", "", 401},
		{"raw (Gravel)", "Basic s3cret", 200},
		{"raw, first line", "Basic old-one", 200},
		{"curl -u / Python basic_auth_handler", basicHeader("pusher", "s3cret"), 200},
		{"base64 of the password alone", "Basic czNjcmV0", 200},
		{"wrong", "Basic s3cre7", 401},
		{"wrong, standard", basicHeader("pusher", "nope"), 401},
	} {
		if code := send(t, http.DefaultClient, "POST", base+"/metrics/job/j", "m_total 1\n", c.header); code != c.want {
			t.Errorf("%s: push %d, want %d", c.name, code, c.want)
		}
	}
	if code := send(t, http.DefaultClient, "GET", base+"/metrics", "", ""); code != 200 {
		t.Errorf("scrape with --no-web.auth-scrape: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func TestRunBadBasicAuthFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"plain": "not-a-hash-secret\n", "empty": "\n"} {
		p := writeFile(t, filepath.Join(dir, name), content)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := run(ctx, []string{"--web.listen-address=127.0.0.1:0", "--basic-auth-file=" + p})
		if err == nil || strings.Contains(err.Error(), "not-a-hash-secret") {
			t.Errorf("%s: run = %v, want an error not showing the line", name, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := writeFile(t, filepath.Join(dir, "web.yml"), "basic_auth_users:\n  alice: plain\n")
	if err := run(ctx, []string{"--web.listen-address=127.0.0.1:0", "--web.config.file=" + cfg}); err == nil {
		t.Error("web config with a plain-text password accepted")
	}
}

// TestRunWebConfigReload: a change of basic_auth_users applies without a
// restart, as with exporter-toolkit.
func TestRunWebConfigReload(t *testing.T) {
	recheck := credentialsRecheck
	credentialsRecheck = 0 // every request looks for a change
	t.Cleanup(func() { credentialsRecheck = recheck })
	cfg := writeFile(t, filepath.Join(t.TempDir(), "web.yml"), "basic_auth_users:\n  alice: "+bcryptHash(t, "wonder")+"\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := startRun(t, ctx, "--web.config.file="+cfg)
	if code := send(t, http.DefaultClient, "POST", base+"/metrics/job/j", "m_total 1\n", basicHeader("alice", "wonder")); code != 200 {
		t.Fatalf("push: %d", code)
	}
	writeFile(t, cfg, "# rotated\nbasic_auth_users:\n  bob: "+bcryptHash(t, "builder")+"\n")
	future := time.Now().Add(time.Minute) // A distinct mtime even on coarse clocks.
	if err := os.Chtimes(cfg, future, future); err != nil {
		t.Fatal(err)
	}
	if code := send(t, http.DefaultClient, "POST", base+"/metrics/job/j", "m_total 1\n", basicHeader("bob", "builder")); code != 200 {
		t.Errorf("new user after reload: %d, want 200", code)
	}
	if code := send(t, http.DefaultClient, "POST", base+"/metrics/job/j", "m_total 1\n", basicHeader("alice", "wonder")); code != 401 {
		t.Errorf("removed user after reload: %d, want 401", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestRunTLSWithAuth: exporter-toolkit still serves TLS (cert paths relative
// to the web config), while the gateway checks the credentials.
func TestRunTLSWithAuth(t *testing.T) {
	dir := t.TempDir()
	pool := writeSelfSignedCert(t, filepath.Join(dir, "tls"))
	cfg := writeFile(t, filepath.Join(dir, "web.yml"),
		"tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\nbasic_auth_users:\n  alice: "+bcryptHash(t, "wonder")+"\n")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base, done := startRunWith(t, ctx, "https", cl, "--web.config.file="+cfg)
	if code := send(t, cl, "POST", base+"/metrics/job/j", "m_total 1\n", ""); code != 401 {
		t.Errorf("TLS push without credentials: %d, want 401", code)
	}
	if code := send(t, cl, "POST", base+"/metrics/job/j", "m_total 1\n", basicHeader("alice", "wonder")); code != 200 {
		t.Errorf("TLS push with credentials: %d, want 200", code)
	}
	if resp, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/-/healthy"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served despite tls_server_config")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func writeSelfSignedCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gateway test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "cert.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(dir, "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// TestRunLimitFlags: the limit flags reach the gateway and the store; 0 is
// no limit; negative values are refused.
func TestRunLimitFlags(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := startRun(t, ctx, "--push.max-samples=2", "--push.max-label-value-length=0",
		"--push.max-label-name-length=4", "--push.max-labels-per-series=2", "--storage.max-series=2", "--storage.max-series-per-group=0")
	long := strings.Repeat("v", 10_000) // beyond the default value length
	for _, c := range []struct {
		name, path, body string
		want             int
	}{
		{"samples", "/metrics/job/j", "a 1\nb 1\nc 1\n", 413},
		{"label name", "/metrics/job/j", "a{abcde=\"1\"} 1\n", 400},
		{"labels per series", "/metrics/job/j", "a{x=\"1\",y=\"2\"} 1\n", 400},
		{"value length off", "/metrics/job/j", fmt.Sprintf("a{x=%q} 1\n", long), 200},
		{"second series", "/metrics/job/j", "b 1\n", 200},
		{"third series", "/metrics/job/k", "c 1\n", 429},
	} {
		if code := send(t, http.DefaultClient, "POST", base+c.path, c.body, ""); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	for _, f := range []string{"--push.max-samples=-1", "--storage.max-series=-5", "--push.max-body-bytes=0"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := run(ctx, []string{"--web.listen-address=127.0.0.1:0", f}); err == nil {
			t.Errorf("%s accepted", f)
		}
	}
}

// TestCredentialsRecheckThrottled: requests within credentialsRecheck of the
// last look at the files use the loaded credentials without stat'ing them;
// the next look after that picks the change up.
func TestCredentialsRecheckThrottled(t *testing.T) {
	dir := t.TempDir()
	hashes := writeFile(t, filepath.Join(dir, "hashes"), bcryptHash(t, "first")+"\n")
	a, err := newAuthFiles("", hashes, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, hashes, bcryptHash(t, "second")+"\n")
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(hashes, future, future); err != nil {
		t.Fatal(err)
	}
	auth, err := a.Current()
	if err != nil || !auth.Authenticate("Basic first") || auth.Authenticate("Basic second") {
		t.Fatalf("within the recheck interval: want the loaded credentials (first), got err %v", err)
	}
	a.checked.Store(time.Now().Add(-2 * credentialsRecheck).UnixNano())
	auth, err = a.Current()
	if err != nil || !auth.Authenticate("Basic second") || auth.Authenticate("Basic first") {
		t.Fatalf("after the recheck interval: want the changed file's credentials (second), got err %v", err)
	}
}
