package authsecret

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus-lambda/prometheus-lambda/internal/secretsmanagertest"
)

// useFakeAWS points the real SDK at a local Secrets Manager and isolates it
// from the machine's AWS configuration.
func useFakeAWS(t *testing.T, srv *secretsmanagertest.Server) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL(),
		"AWS_ACCESS_KEY_ID":                "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		"AWS_SESSION_TOKEN":                "",
		"AWS_REGION":                       "eu-west-1",
		"AWS_CONFIG_FILE":                  "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE":      "/dev/null",
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_MAX_ATTEMPTS":                 "1", // the SDK's retries would only slow the failure cases down
	} {
		t.Setenv(k, v)
	}
}

func TestFetchWithRealSDK(t *testing.T) {
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
	if err == nil || !strings.Contains(err.Error(), `"missing"`) || !strings.Contains(err.Error(), "ResourceNotFound") {
		t.Fatalf("Fetch(missing) error = %v, want it to name the secret and ResourceNotFoundException", err)
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
	srv.FailNext(1)

	fetch := func(ctx context.Context) (Credentials, error) { return Fetch(ctx, "gateway-auth") }
	l := NewLoader(context.Background(), fetch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := l.Get(ctx); err == nil {
		t.Fatal("first Get succeeded although the endpoint failed")
	}
	creds, err := l.Get(ctx)
	if err != nil || creds.Username != "lambda" {
		t.Fatalf("second Get = %+v, %v; want the credentials after a retry", creds, err)
	}
	if _, err := l.Get(ctx); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests(); got != 2 {
		t.Fatalf("server saw %d requests, want 2 (one failure, one success, then cached)", got)
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
