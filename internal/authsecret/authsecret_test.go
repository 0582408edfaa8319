package authsecret

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/secretsmanagertest"
)

// useFakeAWS points Fetch at a local Secrets Manager and isolates it from
// the machine's AWS configuration.
func useFakeAWS(t *testing.T, srv *secretsmanagertest.Server) {
	t.Helper()
	for k, v := range fakeEnv(srv) {
		t.Setenv(k, v)
	}
}

func fakeEnv(srv *secretsmanagertest.Server) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER":    srv.URL(),
		"AWS_ENDPOINT_URL":                    "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
		"AWS_USE_FIPS_ENDPOINT":               "",
		"AWS_USE_DUALSTACK_ENDPOINT":          "",
		"AWS_ACCESS_KEY_ID":                   secretsmanagertest.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":               secretsmanagertest.SecretAccessKey,
		"AWS_SESSION_TOKEN":                   "session-token",
		"AWS_REGION":                          "eu-west-1",
		"AWS_MAX_ATTEMPTS":                    "1", // retries would only slow the failure cases down
	}
}

func TestFetch(t *testing.T) {
	srv := secretsmanagertest.NewServer(map[string]string{"gateway-auth": `{"username":"lambda","password":"s3cr3t"}`})
	defer srv.Close()
	useFakeAWS(t, srv)

	for _, id := range []string{"gateway-auth", secretsmanagertest.ARN("gateway-auth")} {
		creds, err := Fetch(context.Background(), id)
		if err != nil {
			t.Fatalf("Fetch(%q): %v", id, err)
		}
		if creds != (Credentials{Username: "lambda", Password: "s3cr3t"}) {
			t.Fatalf("Fetch(%q) = %+v", id, creds)
		}
	}
	if got := srv.Requests(); got != 2 {
		t.Fatalf("server saw %d requests, want 2", got)
	}

	_, err := Fetch(context.Background(), "missing")
	var apiErr *APIError
	if err == nil || !strings.Contains(err.Error(), `"missing"`) || !strings.Contains(err.Error(), "ResourceNotFoundException") ||
		!strings.Contains(err.Error(), "can't find the specified secret") || !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Fatalf("Fetch(missing) error = %v, want an *APIError naming the secret, ResourceNotFoundException and its message", err)
	}
}

func TestParse(t *testing.T) {
	if c, err := Parse(`{"username":"u","password":"p","extra":1}`); err != nil || c.Username != "u" || c.Password != "p" {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	for _, bad := range []string{``, `not json`, `{"username":"u"}`, `{"username":"","password":"p"}`, `{"username":1,"password":"hunter2"}`, `["u","p"]`} {
		_, err := Parse(bad)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) error %q leaks the secret", bad, err)
		}
	}
}

func TestCredentialsStringRedactsPassword(t *testing.T) {
	s := Credentials{Username: "u", Password: "hunter2"}.String()
	if strings.Contains(s, "hunter2") || !strings.Contains(s, "u") {
		t.Fatalf("String() = %q", s)
	}
}

func TestLoaderRetriesAfterFailure(t *testing.T) {
	srv := secretsmanagertest.NewServer(map[string]string{"gateway-auth": `{"username":"lambda","password":"s3cr3t"}`})
	defer srv.Close()
	useFakeAWS(t, srv)
	fetch := func(ctx context.Context) (Credentials, error) { return Fetch(ctx, "gateway-auth") }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The background fetch and the first retry fail: that Get reports the
	// failure, the next one retries again and succeeds, later ones are cached.
	// Each Get is called once the attempt before it has ended (l.done), so
	// the order does not depend on timing.
	srv.FailNext(2)
	l := NewLoader(context.Background(), fetch)
	<-l.done
	if _, err := l.Get(ctx); err == nil {
		t.Fatal("Get succeeded although the endpoint failed")
	}
	creds, err := l.Get(ctx)
	if err != nil || creds.Username != "lambda" {
		t.Fatalf("Get after two failures = %+v, %v; want the credentials after a retry", creds, err)
	}
	if _, err := l.Get(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests(); got != 3 {
		t.Fatalf("server saw %d requests, want 3 (two failures, one success, then cached)", got)
	}
}

func TestLoaderGetHonoursContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	l := NewLoader(context.Background(), func(context.Context) (Credentials, error) {
		<-release
		return Credentials{}, errors.New("unreachable")
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestNewClientRejectsIncompleteEnvironment(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"no region":      {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"},
		"no credentials": {"AWS_REGION": "eu-west-1"},
		"plain http off the host": {"AWS_REGION": "eu-west-1",
			"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://credentials.example.com/creds"},
		"bad max attempts":          {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_MAX_ATTEMPTS": "0"},
		"max attempts not a number": {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_MAX_ATTEMPTS": "three"},
		"region not a host label":   {"AWS_REGION": "eu-west-1.evil.example/", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"},
		"fips with endpoint URL": {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s",
			"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_USE_FIPS_ENDPOINT": "true"},
		"dualstack with endpoint URL": {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s",
			"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:1", "AWS_USE_DUALSTACK_ENDPOINT": "true"},
		"endpoint URL not http": {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s",
			"AWS_ENDPOINT_URL": "ftp://example.com"},
		"container endpoint not http": {"AWS_REGION": "eu-west-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "file:///etc/passwd"},
	} {
		if _, err := NewClient(envOf(env)); err == nil {
			t.Errorf("%s: NewClient succeeded, want an error", name)
		}
	}
	for _, ok := range []string{"http://127.0.0.1:9001/creds", "http://localhost/creds", "http://169.254.170.23/v1/credentials", "http://[fd00:ec2::23]/v1/credentials", "https://credentials.example.com/creds"} {
		if err := checkContainerEndpoint(ok); err != nil {
			t.Errorf("checkContainerEndpoint(%q) = %v, want nil", ok, err)
		}
	}
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
