package authsecret

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

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

// TestNewClientContainerCredentials covers SnapStart's configuration: no
// access keys in the environment, credentials from the container endpoint,
// fetched with the authorization token and used to sign the request.
func TestNewClientContainerCredentials(t *testing.T) {
	var tokenSeen string
	creds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenSeen = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"secret","Token":"container-session","Expiration":%q}`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	defer creds.Close()
	var authSeen, sessionSeen string
	sm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authSeen, sessionSeen = r.Header.Get("Authorization"), r.Header.Get("X-Amz-Security-Token")
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"Name":"gateway-auth","SecretString":"{\"username\":\"u\",\"password\":\"p\"}"}`)
	}))
	defer sm.Close()

	client, err := NewClient(envOf(map[string]string{
		"AWS_DEFAULT_REGION":                 "eu-west-1",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": creds.URL + "/2021-04-23/credentials",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN":  "container-token",
		"AWS_ENDPOINT_URL":                   sm.URL,
	}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("gateway-auth")})
	if err != nil {
		t.Fatal(err)
	}
	if out.SecretString == nil || *out.SecretString != `{"username":"u","password":"p"}` {
		t.Fatalf("SecretString = %v", out.SecretString)
	}
	if tokenSeen != "container-token" {
		t.Errorf("credentials endpoint saw Authorization %q, want the container token", tokenSeen)
	}
	if !strings.Contains(authSeen, "Credential=ASIACONTAINER/") || !strings.Contains(authSeen, "/eu-west-1/secretsmanager/") || sessionSeen != "container-session" {
		t.Errorf("request signed with Authorization %q, X-Amz-Security-Token %q; want the container credentials", authSeen, sessionSeen)
	}
}

func TestNewClientRejectsIncompleteEnvironment(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"no region":      {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"},
		"no credentials": {"AWS_REGION": "eu-west-1"},
		"plain http off the host": {"AWS_REGION": "eu-west-1",
			"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://credentials.example.com/creds"},
		"bad max attempts": {"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_MAX_ATTEMPTS": "0"},
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
