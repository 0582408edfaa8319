package authsecret

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/prometheus-lambda/prometheus-lambda/internal/secretsmanagertest"
)

const gatewaySecret = `{"username":"lambda","password":"s3cr3t"}`

// newTestClient is NewClient on env with retries after 1ms.
func newTestClient(t *testing.T, env map[string]string) *Client {
	t.Helper()
	c, err := NewClient(envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = func(int) time.Duration { return time.Millisecond }
	return c
}

func with(env map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(env)+len(kv)/2)
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// fixedTimeSigner is the SDK's own signer made to sign at a fixed time and
// without the SDK's bookkeeping headers (amz-sdk-invocation-id,
// amz-sdk-request), which are no part of the GetSecretValue protocol.
type fixedTimeSigner struct {
	at     time.Time
	signer *v4.Signer
}

func (s fixedTimeSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) error {
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "amz-sdk-") {
			r.Header.Del(k)
		}
	}
	return s.signer.SignHTTP(ctx, creds, r, payloadHash, service, region, s.at, optFns...)
}

// TestWireMatchesSDK sends the same GetSecretValue with the real SDK client
// and with ours, signed at the same time with the same credentials, to the
// fake (which checks both signatures): the canonical requests, the bodies
// and the Authorization headers must be identical.
func TestWireMatchesSDK(t *testing.T) {
	at := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	srv := secretsmanagertest.NewServer(map[string]string{"gateway-auth": gatewaySecret})
	defer srv.Close()
	srv.SetClock(func() time.Time { return at.Add(time.Minute) })

	for _, endpoint := range []string{srv.URL(), srv.URL() + "/", srv.URL() + "/base"} {
		for _, id := range []string{"gateway-auth", secretsmanagertest.ARN("gateway-auth")} {
			for _, token := range []string{"", "session-token"} {
				name := fmt.Sprintf("endpoint %s, id %s, token %q", endpoint, id, token)
				sdk := secretsmanager.New(secretsmanager.Options{
					Region:           "eu-west-1",
					BaseEndpoint:     aws.String(endpoint),
					Credentials:      credentials.NewStaticCredentialsProvider(secretsmanagertest.AccessKeyID, secretsmanagertest.SecretAccessKey, token),
					RetryMaxAttempts: 1,
					HTTPSignerV4:     fixedTimeSigner{at, v4.NewSigner()},
				})
				out, err := sdk.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
				if err != nil || aws.ToString(out.SecretString) != gatewaySecret {
					t.Fatalf("%s: SDK: %v", name, err)
				}
				sdkReq, _ := srv.LastRequest()

				c := newTestClient(t, map[string]string{
					"AWS_REGION":                       "eu-west-1",
					"AWS_ACCESS_KEY_ID":                secretsmanagertest.AccessKeyID,
					"AWS_SECRET_ACCESS_KEY":            secretsmanagertest.SecretAccessKey,
					"AWS_SESSION_TOKEN":                token,
					"AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
				})
				c.now = func() time.Time { return at }
				s, err := c.GetSecretString(context.Background(), id)
				if err != nil || s != gatewaySecret {
					t.Fatalf("%s: ours: %q, %v", name, s, err)
				}
				ours, _ := srv.LastRequest()

				if ours.CanonicalRequest != sdkReq.CanonicalRequest {
					t.Errorf("%s: canonical requests differ\nSDK:\n%s\nours:\n%s", name, sdkReq.CanonicalRequest, ours.CanonicalRequest)
				}
				if string(ours.Body) != string(sdkReq.Body) {
					t.Errorf("%s: bodies differ: SDK %s, ours %s", name, sdkReq.Body, ours.Body)
				}
				for _, h := range []string{"Authorization", "Content-Type", "X-Amz-Target", "X-Amz-Date", "X-Amz-Security-Token", "Content-Length"} {
					if ours.Header.Get(h) != sdkReq.Header.Get(h) {
						t.Errorf("%s: %s: SDK %q, ours %q", name, h, sdkReq.Header.Get(h), ours.Header.Get(h))
					}
				}
				if ours.Method != sdkReq.Method || ours.Path != sdkReq.Path {
					t.Errorf("%s: SDK sent %s %s, ours %s %s", name, sdkReq.Method, sdkReq.Path, ours.Method, ours.Path)
				}
			}
		}
	}
}

// TestEndpointMatchesSDKRules compares endpointFor with the SDK's endpoint
// rules for Secrets Manager across partitions, FIPS and dual-stack.
func TestEndpointMatchesSDKRules(t *testing.T) {
	resolver := secretsmanager.NewDefaultEndpointResolverV2()
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-7", "il-central-1", "mx-central-1", "aws-global",
		"cn-north-1", "cn-northwest-1", "aws-cn-global", "us-gov-west-1", "us-gov-east-1", "aws-us-gov-global",
		"us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1", "us-isof-south-1", "eusc-de-east-1", "aws-iso-b-global",
		"xx-unknown-1", "local"}
	for _, region := range regions {
		for _, fips := range []bool{false, true} {
			for _, dualStack := range []bool{false, true} {
				for _, configured := range []string{"", "http://127.0.0.1:4566", "https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com/base"} {
					params := secretsmanager.EndpointParameters{Region: aws.String(region), UseFIPS: aws.Bool(fips), UseDualStack: aws.Bool(dualStack)}
					if configured != "" {
						params.Endpoint = aws.String(configured)
					}
					want, wantErr := resolver.ResolveEndpoint(context.Background(), params)
					got, err := endpointFor(region, configured, fips, dualStack)
					name := fmt.Sprintf("region %s, fips %v, dualstack %v, endpoint %q", region, fips, dualStack, configured)
					if (err != nil) != (wantErr != nil) {
						t.Errorf("%s: error %v, SDK's %v", name, err, wantErr)
						continue
					}
					if err != nil {
						continue
					}
					u := want.URI
					u.Path = joinPath(u.Path, "/")
					if got != u.String() {
						t.Errorf("%s: %s, SDK's %s", name, got, u.String())
					}
				}
			}
		}
	}
}

// TestNewClientEnvironment covers the environment NewClient reads.
func TestNewClientEnvironment(t *testing.T) {
	keys := map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"}
	for _, c := range []struct {
		env         map[string]string
		region, url string
		maxAttempts int
	}{
		{with(keys, "AWS_REGION", "eu-west-1"), "eu-west-1", "https://secretsmanager.eu-west-1.amazonaws.com/", 3},
		{with(keys, "AWS_DEFAULT_REGION", "us-east-2"), "us-east-2", "https://secretsmanager.us-east-2.amazonaws.com/", 3},
		{with(keys, "AWS_REGION", "eu-west-1", "AWS_DEFAULT_REGION", "us-east-2"), "eu-west-1", "https://secretsmanager.eu-west-1.amazonaws.com/", 3},
		{with(keys, "AWS_REGION", "cn-north-1"), "cn-north-1", "https://secretsmanager.cn-north-1.amazonaws.com.cn/", 3},
		{with(keys, "AWS_REGION", "cn-northwest-1", "AWS_USE_DUALSTACK_ENDPOINT", "true"), "cn-northwest-1", "https://secretsmanager.cn-northwest-1.amazonaws.com.cn/", 3},
		{with(keys, "AWS_REGION", "cn-north-1", "AWS_USE_DUALSTACK_ENDPOINT", "true", "AWS_USE_FIPS_ENDPOINT", "true"), "cn-north-1", "https://secretsmanager-fips.cn-north-1.api.amazonwebservices.com.cn/", 3},
		{with(keys, "AWS_REGION", "us-gov-east-1", "AWS_USE_DUALSTACK_ENDPOINT", "true"), "us-gov-east-1", "https://secretsmanager.us-gov-east-1.amazonaws.com/", 3},
		{with(keys, "AWS_REGION", "us-iso-east-1", "AWS_USE_DUALSTACK_ENDPOINT", "true"), "us-iso-east-1", "https://secretsmanager.us-iso-east-1.api.aws.ic.gov/", 3},
		{with(keys, "AWS_REGION", "us-isob-east-1", "AWS_USE_FIPS_ENDPOINT", "true"), "us-isob-east-1", "https://secretsmanager-fips.us-isob-east-1.sc2s.sgov.gov/", 3},
		{with(keys, "AWS_REGION", "us-gov-west-1", "AWS_USE_FIPS_ENDPOINT", "true"), "us-gov-west-1", "https://secretsmanager-fips.us-gov-west-1.amazonaws.com/", 3},
		{with(keys, "AWS_REGION", "us-east-1", "AWS_USE_FIPS_ENDPOINT", "TRUE"), "us-east-1", "https://secretsmanager-fips.us-east-1.amazonaws.com/", 3},
		// Secrets Manager's regular host names are dual-stack in aws (the SDK's rules, not ….api.aws).
		{with(keys, "AWS_REGION", "us-east-1", "AWS_USE_DUALSTACK_ENDPOINT", "true"), "us-east-1", "https://secretsmanager.us-east-1.amazonaws.com/", 3},
		{with(keys, "AWS_REGION", "us-east-1", "AWS_USE_FIPS_ENDPOINT", "true", "AWS_USE_DUALSTACK_ENDPOINT", "true"), "us-east-1", "https://secretsmanager-fips.us-east-1.amazonaws.com/", 3},
		{with(keys, "AWS_REGION", "us-east-1", "AWS_USE_FIPS_ENDPOINT", "false"), "us-east-1", "https://secretsmanager.us-east-1.amazonaws.com/", 3},
		{with(keys, "AWS_REGION", "eu-west-1", "AWS_ENDPOINT_URL", "http://127.0.0.1:4566"), "eu-west-1", "http://127.0.0.1:4566/", 3},
		{with(keys, "AWS_REGION", "eu-west-1", "AWS_ENDPOINT_URL", "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "https://sm.example.com/base"),
			"eu-west-1", "https://sm.example.com/base", 3},
		{with(keys, "AWS_REGION", "eu-west-1", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "https://sm.example.com", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", "AWS_USE_FIPS_ENDPOINT", "true"),
			"eu-west-1", "https://secretsmanager-fips.eu-west-1.amazonaws.com/", 3},
		{with(keys, "AWS_REGION", "eu-west-1", "AWS_MAX_ATTEMPTS", "1"), "eu-west-1", "https://secretsmanager.eu-west-1.amazonaws.com/", 1},
		{with(keys, "AWS_REGION", "eu-west-1", "AWS_MAX_ATTEMPTS", "7"), "eu-west-1", "https://secretsmanager.eu-west-1.amazonaws.com/", 7},
	} {
		client, err := NewClient(envOf(c.env))
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if client.region != c.region || client.url != c.url || client.maxAttempts != c.maxAttempts {
			t.Errorf("%v: region %q, URL %q, %d attempts; want %q, %q, %d", c.env, client.region, client.url, client.maxAttempts, c.region, c.url, c.maxAttempts)
		}
	}

	// Static keys win over the container endpoint; the relative URI over the full one.
	c, err := NewClient(envOf(with(keys, "AWS_REGION", "eu-west-1", "AWS_SESSION_TOKEN", "tok", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/creds")))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.creds.retrieve(context.Background(), nil); got.AccessKeyID != "AKID" || got.SecretAccessKey != "secret" || got.SessionToken != "tok" {
		t.Errorf("static credentials = %+v", got)
	}
	c, err = NewClient(envOf(map[string]string{"AWS_REGION": "eu-west-1",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1/creds"}))
	if err != nil {
		t.Fatal(err)
	}
	if cc, ok := c.creds.(*containerCredentials); !ok || cc.endpoint != "http://169.254.170.2/v2/credentials/abc" {
		t.Errorf("credentials source %#v, want the ECS relative URI", c.creds)
	}
}

// credentialsEndpoint serves container credentials, recording the
// Authorization header of each request; the first failures requests are
// answered 500.
type credentialsEndpoint struct {
	*httptest.Server
	expires  time.Duration
	failures atomic.Int32
	requests atomic.Int32
	auth     atomic.Value // string
}

func newCredentialsEndpoint(expires time.Duration) *credentialsEndpoint {
	e := &credentialsEndpoint{expires: expires}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.requests.Add(1)
		e.auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		if e.failures.Add(-1) >= 0 {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"code":"InternalError","message":"try again"}`)
			return
		}
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"code":"AccessDenied","message":"no token"}`)
			return
		}
		fmt.Fprintf(w, `{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"container-secret","Token":"container-session","Expiration":%q}`,
			time.Now().Add(e.expires).UTC().Format(time.RFC3339))
	}))
	return e
}

// TestContainerCredentials covers SnapStart's configuration: no access keys
// in the environment, credentials from the container endpoint, fetched with
// the authorization token (or the token file's) and used to sign.
func TestContainerCredentials(t *testing.T) {
	srv := secretsmanagertest.NewServer(map[string]string{"gateway-auth": gatewaySecret})
	defer srv.Close()
	srv.AllowCredentials("ASIACONTAINER", "container-secret")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, token, tokenFile, wantAuth string
	}{
		{"token", "container-token", "", "container-token"},
		{"token file", "ignored-token", tokenFile, "file-token"},
	} {
		creds := newCredentialsEndpoint(time.Hour)
		defer creds.Close()
		creds.failures.Store(1) // retried like the request itself
		client := newTestClient(t, map[string]string{
			"AWS_DEFAULT_REGION":                     "eu-west-1",
			"AWS_CONTAINER_CREDENTIALS_FULL_URI":     creds.URL + "/2021-04-23/credentials",
			"AWS_CONTAINER_AUTHORIZATION_TOKEN":      c.token,
			"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": c.tokenFile,
			"AWS_ENDPOINT_URL":                       srv.URL(),
		})
		for range 2 {
			s, err := client.GetSecretString(context.Background(), "gateway-auth")
			if err != nil || s != gatewaySecret {
				t.Fatalf("%s: GetSecretString = %q, %v", c.name, s, err)
			}
		}
		if got := creds.auth.Load(); got != c.wantAuth {
			t.Errorf("%s: credentials endpoint saw Authorization %q, want %q", c.name, got, c.wantAuth)
		}
		if n := creds.requests.Load(); n != 2 {
			t.Errorf("%s: credentials endpoint saw %d requests, want 2 (a failure, then one fetch cached for the second call)", c.name, n)
		}
		last, _ := srv.LastRequest()
		if auth := last.Header.Get("Authorization"); !strings.Contains(auth, "Credential=ASIACONTAINER/") || !strings.Contains(auth, "/eu-west-1/secretsmanager/aws4_request") ||
			last.Header.Get("X-Amz-Security-Token") != "container-session" {
			t.Errorf("%s: request signed with Authorization %q, X-Amz-Security-Token %q; want the container credentials", c.name, auth, last.Header.Get("X-Amz-Security-Token"))
		}
	}

	// Credentials within 5 minutes of expiry are fetched again.
	creds := newCredentialsEndpoint(2 * time.Minute)
	defer creds.Close()
	client := newTestClient(t, map[string]string{"AWS_REGION": "eu-west-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI": creds.URL,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN": "t", "AWS_ENDPOINT_URL": srv.URL()})
	for range 2 {
		if _, err := client.GetSecretString(context.Background(), "gateway-auth"); err != nil {
			t.Fatal(err)
		}
	}
	if n := creds.requests.Load(); n != 2 {
		t.Errorf("credentials expiring in 2 minutes were fetched %d times for two calls, want 2", n)
	}

	// A refusal of the credentials endpoint is not retried and is reported.
	creds = newCredentialsEndpoint(time.Hour)
	defer creds.Close()
	client = newTestClient(t, map[string]string{"AWS_REGION": "eu-west-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI": creds.URL, "AWS_ENDPOINT_URL": srv.URL()})
	_, err := client.GetSecretString(context.Background(), "gateway-auth")
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "container credentials") || creds.requests.Load() != 1 {
		t.Errorf("without a token: error %v after %d requests, want AccessDenied after 1", err, creds.requests.Load())
	}
}

func TestRetries(t *testing.T) {
	srv := secretsmanagertest.NewServer(map[string]string{"gateway-auth": gatewaySecret})
	defer srv.Close()
	env := with(fakeEnv(srv), "AWS_MAX_ATTEMPTS", "")

	for _, c := range []struct {
		status  int
		errType string
	}{
		{500, "InternalServiceError"},
		{503, "ServiceUnavailable"},
		{400, "ThrottlingException"},
		{429, "TooManyRequestsException"},
	} {
		before := srv.Requests()
		srv.FailNextWith(2, c.status, c.errType)
		s, err := newTestClient(t, env).GetSecretString(context.Background(), "gateway-auth")
		if err != nil || s != gatewaySecret {
			t.Errorf("after two %d %s: %q, %v; want the secret at the third attempt", c.status, c.errType, s, err)
		}
		if n := srv.Requests() - before; n != 3 {
			t.Errorf("%s: %d requests, want 3", c.errType, n)
		}
	}

	// AWS_MAX_ATTEMPTS bounds the attempts.
	before := srv.Requests()
	srv.FailNext(5)
	_, err := newTestClient(t, with(env, "AWS_MAX_ATTEMPTS", "2")).GetSecretString(context.Background(), "gateway-auth")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Type != "InternalServiceError" || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Errorf("error = %v, want InternalServiceError after 2 attempts", err)
	}
	if n := srv.Requests() - before; n != 2 {
		t.Errorf("AWS_MAX_ATTEMPTS=2: %d requests", n)
	}
	srv.FailNext(0)

	// A client error is final.
	before = srv.Requests()
	_, err = newTestClient(t, with(env, "AWS_MAX_ATTEMPTS", "5")).GetSecretString(context.Background(), "missing")
	if !errors.As(err, &apiErr) || apiErr.Type != "ResourceNotFoundException" || apiErr.StatusCode != 400 {
		t.Errorf("error = %v, want ResourceNotFoundException", err)
	}
	if n := srv.Requests() - before; n != 1 {
		t.Errorf("ResourceNotFoundException was retried: %d requests", n)
	}

	// So is a bad signature.
	_, err = newTestClient(t, with(env, "AWS_SECRET_ACCESS_KEY", "wrong")).GetSecretString(context.Background(), "gateway-auth")
	if !errors.As(err, &apiErr) || apiErr.Type != "InvalidSignatureException" || apiErr.StatusCode != 403 || strings.Contains(err.Error(), "attempts") {
		t.Errorf("error = %v, want one InvalidSignatureException", err)
	}

	// Transport errors are retried.
	c := newTestClient(t, env)
	var calls atomic.Int32
	c.http.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("connection reset by peer")
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	if s, err := c.GetSecretString(context.Background(), "gateway-auth"); err != nil || s != gatewaySecret || calls.Load() != 2 {
		t.Errorf("after a transport error: %q, %v, %d calls", s, err, calls.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestJitteredBackoff(t *testing.T) {
	for retry := 1; retry < 40; retry++ {
		ceiling := min(backoffMax, backoffBase<<min(retry-1, 15))
		for range 100 {
			if d := jitteredBackoff(retry); d <= 0 || d > ceiling {
				t.Fatalf("jitteredBackoff(%d) = %v, want in (0, %v]", retry, d, ceiling)
			}
		}
	}
}

func TestContextCancel(t *testing.T) {
	// During a request: the server answers only when the client gives up.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer hang.Close()
	keys := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": hang.URL}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := newTestClient(t, keys).GetSecretString(ctx, "gateway-auth")
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled during the request: %v after %v, want context.Canceled at once", err, time.Since(start))
	}

	// While waiting to retry.
	srv := secretsmanagertest.NewServer(map[string]string{"gateway-auth": gatewaySecret})
	defer srv.Close()
	srv.FailNext(1)
	c := newTestClient(t, with(fakeEnv(srv), "AWS_MAX_ATTEMPTS", "3"))
	c.backoff = func(int) time.Duration { return time.Hour }
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.GetSecretString(ctx, "gateway-auth")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "InternalServiceError") {
		t.Errorf("deadline while backing off: %v, want DeadlineExceeded naming the last error", err)
	}

	// Fetch too.
	useFakeAWS(t, srv)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := Fetch(ctx, "gateway-auth"); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch with a cancelled context: %v", err)
	}
}

// TestPasswordNeverInErrors feeds Fetch secrets and answers that fail to
// parse; no error may quote the password.
func TestPasswordNeverInErrors(t *testing.T) {
	const password = "hunter2"
	bad := map[string]string{
		"truncated":    `{"username":"u","password":"hunter2"`,
		"wrong type":   `{"username":1,"password":"hunter2"}`,
		"no username":  `{"password":"hunter2"}`,
		"array":        `["u","hunter2"]`,
		"not json":     `username=u password=hunter2`,
		"bad escape":   `{"username":"u","password":"hunter2\q"}`,
		"trailing":     `{"username":"u","password":"x"} hunter2`,
		"empty object": `{}`,
	}
	srv := secretsmanagertest.NewServer(bad)
	defer srv.Close()
	useFakeAWS(t, srv)
	for id := range bad {
		_, err := Fetch(context.Background(), id)
		if err == nil {
			t.Errorf("Fetch(%q) succeeded", id)
			continue
		}
		if strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), id) {
			t.Errorf("Fetch(%q) error %q: must name the secret, not quote it", id, err)
		}
	}

	// Nor when the answer itself is malformed around the secret.
	for _, body := range []string{`{"SecretString":"{\"username\":\"u\",\"password\":\"hunter2\"}"`, `{"SecretString":hunter2}`, `{"SecretString":["hunter2"]}`} {
		odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
		t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", odd.URL)
		_, err := Fetch(context.Background(), "gateway-auth")
		odd.Close()
		if err == nil || strings.Contains(err.Error(), password) {
			t.Errorf("answer %s: error %v", body, err)
		}
	}
}

func TestBinarySecret(t *testing.T) {
	srv := secretsmanagertest.NewServer(nil)
	defer srv.Close()
	srv.SetBinarySecret("binary-auth", []byte("hunter2"))
	useFakeAWS(t, srv)
	_, err := Fetch(context.Background(), "binary-auth")
	if err == nil || !strings.Contains(err.Error(), `"binary-auth"`) || !strings.Contains(err.Error(), "SecretBinary") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Fetch(binary secret) error = %v, want a clear error naming the secret", err)
	}
}
