package gateway

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func hashOf(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost) // cost 4: fast tests
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func basic(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParsePasswordHashes(t *testing.T) {
	h1, h2 := hashOf(t, "one"), hashOf(t, "two")
	got, err := ParsePasswordHashes(strings.NewReader("\n" + h1 + "\n   \n  " + h2 + "  \n"))
	if err != nil || len(got) != 2 || got[0] != h1 || got[1] != h2 {
		t.Fatalf("ParsePasswordHashes = %q, %v", got, err)
	}
	_, err = ParsePasswordHashes(strings.NewReader(h1 + "\nplaintext-secret\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "plaintext-secret") {
		t.Errorf("bad line: %v (want line 2 named, content not shown)", err)
	}
	if _, err := ParsePasswordHashes(strings.NewReader("\n\n")); err == nil {
		t.Error("empty file accepted")
	}
}

// TestAuthenticatorGravelHashes: Gravel's --basic-auth-file semantics, with
// its defect fixed (Gravel checks only the first line).
func TestAuthenticatorGravelHashes(t *testing.T) {
	a, err := NewAuthenticator(Credentials{PasswordHashes: []string{hashOf(t, "first"), hashOf(t, "s3cret"), hashOf(t, "pa:ss")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, header string
		want         bool
	}{
		{"raw password, as Gravel's README's curl -H", "Basic s3cret", true},
		{"raw password, first line", "Basic first", true},
		{"base64 of the password alone", basic("s3cret"), true},
		{"standard user:password, any user (curl -u, Python prometheus_client basic_auth_handler)", basic("lambda:s3cret"), true},
		{"empty user name", basic(":s3cret"), true},
		{"password with a colon", basic("u:pa:ss"), true},
		{"lower-case scheme", "basic s3cret", true},
		{"wrong raw password", "Basic s3cre", false},
		{"wrong standard password", basic("lambda:nope"), false},
		{"user name is not the password", basic("s3cret:nope"), false},
		{"other scheme", "Bearer s3cret", false},
		{"no token", "Basic ", false},
		{"empty", "", false},
	} {
		if got := a.Authenticate(c.header); got != c.want {
			t.Errorf("%s: Authenticate(%q) = %v, want %v", c.name, c.header, got, c.want)
		}
	}
}

func TestAuthenticatorUsers(t *testing.T) {
	a, err := NewAuthenticator(Credentials{Users: map[string]string{"alice": hashOf(t, "wonder")}})
	if err != nil {
		t.Fatal(err)
	}
	for header, want := range map[string]bool{
		basic("alice:wonder"): true,
		basic("bob:wonder"):   false, // users' passwords are per user
		basic("alice:wrong"):  false,
		basic("wonder"):       false, // raw and user-less passwords are Gravel's only
		"Basic wonder":        false,
	} {
		if got := a.Authenticate(header); got != want {
			t.Errorf("Authenticate(%q) = %v, want %v", header, got, want)
		}
	}
	if _, err := NewAuthenticator(Credentials{Users: map[string]string{"alice": "plain"}}); err == nil || strings.Contains(err.Error(), "plain") {
		t.Errorf("plain-text password: %v (want an error not showing it)", err)
	}
	var none *Authenticator
	if none.Enabled() || none.Authenticate(basic("alice:wonder")) {
		t.Error("nil Authenticator enabled")
	}
}

// TestAuthenticatorCache: a success is remembered (keyed by an HMAC of the
// header, never the header), failures only in a bounded map.
func TestAuthenticatorCache(t *testing.T) {
	a, err := NewAuthenticator(Credentials{PasswordHashes: []string{hashOf(t, "s3cret")}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if !a.Authenticate("Basic s3cret") {
			t.Fatal("refused")
		}
	}
	if len(a.ok) != 1 {
		t.Errorf("%d successes cached, want 1", len(a.ok))
	}
	for k := range a.ok {
		if strings.Contains(string(k[:]), "s3cret") {
			t.Error("cache key holds the password")
		}
	}
	// Replacing the hashes behind the cache's back shows that the cached
	// verdict is used without bcrypt.
	a.hashes = [][]byte{[]byte(hashOf(t, "other"))}
	if !a.Authenticate("Basic s3cret") {
		t.Error("cached success not used")
	}
	for i := range 3 * authCacheSize {
		a.Authenticate(fmt.Sprintf("Bearer %d", i))
	}
	if len(a.fail) > authCacheSize || len(a.ok) > authCacheSize {
		t.Errorf("caches grew to %d failures, %d successes; bound %d", len(a.fail), len(a.ok), authCacheSize)
	}
}

func TestRequireAuthPaths(t *testing.T) {
	a, err := NewAuthenticator(Credentials{Users: map[string]string{"alice": hashOf(t, "wonder")}})
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, scrape := range []bool{true, false} {
		h := RequireAuth(next, func() (*Authenticator, error) { return a, nil }, AuthOptions{Scrape: scrape})
		for _, c := range []struct {
			method, path string
			guarded      bool
		}{
			{"GET", "/-/healthy", false},
			{"GET", "/-/ready", false},
			{"HEAD", "/-/ready", false},
			{"POST", "/metrics/job/j", true},
			{"PUT", "/metrics/job/j", true},
			{"DELETE", "/metrics/job/j", true},
			{"POST", "/metrics", true},
			{"PUT", "/api/v1/admin/wipe", true},
			{"POST", "/-/quit", true},
			{"GET", "/metrics/job/j", true},
			{"GET", "/nonexistent", true},
			{"GET", "/metrics", scrape},
			{"HEAD", "/metrics", scrape},
			{"GET", "/", scrape},
			{"GET", "/status", scrape},
			{"GET", "/api/v1/metrics", scrape},
			{"GET", "/api/v1/status", scrape},
		} {
			for _, withAuth := range []bool{false, true} {
				req := httptest.NewRequest(c.method, c.path, nil)
				if withAuth {
					req.SetBasicAuth("alice", "wonder")
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				want := http.StatusTeapot
				if c.guarded && !withAuth {
					want = http.StatusUnauthorized
				}
				if rec.Code != want {
					t.Errorf("scrape=%v %s %s auth=%v: %d, want %d", scrape, c.method, c.path, withAuth, rec.Code, want)
				}
				if want == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic") {
					t.Errorf("401 without WWW-Authenticate: Basic")
				}
			}
		}
	}
	// Without credentials configured everything passes; a credential error
	// fails closed on guarded paths only.
	open := RequireAuth(next, func() (*Authenticator, error) { return nil, nil }, AuthOptions{Scrape: true})
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, httptest.NewRequest("POST", "/metrics/job/j", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("no credentials configured: %d", rec.Code)
	}
	broken := RequireAuth(next, func() (*Authenticator, error) { return nil, fmt.Errorf("bad file") }, AuthOptions{Scrape: true})
	for path, want := range map[string]int{"/metrics/job/j": http.StatusInternalServerError, "/-/healthy": http.StatusTeapot} {
		rec := httptest.NewRecorder()
		broken.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		if path == "/-/healthy" {
			rec = httptest.NewRecorder()
			broken.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		}
		if rec.Code != want {
			t.Errorf("credential error, %s: %d, want %d", path, rec.Code, want)
		}
	}
}

// TestRequireAuthLogsNoSecrets: refusals are logged without the credentials.
func TestRequireAuthLogsNoSecrets(t *testing.T) {
	a, err := NewAuthenticator(Credentials{PasswordHashes: []string{hashOf(t, "right")}})
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := RequireAuth(http.NotFoundHandler(), func() (*Authenticator, error) { return a, nil }, AuthOptions{Logger: logger})
	for _, header := range []string{"Basic topsecret", basic("user:topsecret")} {
		req := httptest.NewRequest("POST", "/metrics/job/j", nil)
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("%d, want 401", rec.Code)
		}
	}
	out := buf.String()
	if !strings.Contains(out, "unauthenticated request refused") {
		t.Errorf("refusal not logged: %s", out)
	}
	if strings.Contains(out, "topsecret") || strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("user:topsecret"))) {
		t.Errorf("credentials logged: %s", out)
	}
}
