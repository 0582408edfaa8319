// Package authsecret reads the gateway's basic-auth credentials from an AWS
// Secrets Manager secret, off the extension's start path.
//
// The secret's SecretString is JSON: {"username": "...", "password": "..."}.
// It is read with the AWS SDK for Go v2's Secrets Manager client
// (GetSecretValue), configured from the environment Lambda gives an
// extension (see NewClient) rather than by config.LoadDefaultConfig, whose
// chain (shared files, SSO, STS, IMDS, …) serves nothing inside Lambda and
// was most of the layer binary's size.
package authsecret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Credentials are HTTP basic-auth credentials.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// String never reveals the password, so credentials are safe to log by mistake.
func (c Credentials) String() string {
	return "Credentials{Username:" + c.Username + ", Password:<redacted>}"
}

// Fetch reads the secret named by secretID (a name or an ARN) and parses its
// SecretString. Errors name the secret but never its content.
func Fetch(ctx context.Context, secretID string) (Credentials, error) {
	client, err := NewClient(os.Getenv)
	if err != nil {
		return Credentials{}, err
	}
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &secretID})
	if err != nil {
		return Credentials{}, fmt.Errorf("get secret %q: %w", secretID, err)
	}
	if out.SecretString == nil {
		return Credentials{}, fmt.Errorf("secret %q has no SecretString (binary secrets are not supported)", secretID)
	}
	return Parse(*out.SecretString)
}

// NewClient returns a Secrets Manager client configured from the environment
// variables getenv reads, the subset of the SDK's shared configuration that
// applies inside Lambda:
//
//   - region: AWS_REGION, else AWS_DEFAULT_REGION (Lambda sets both);
//   - credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
//     AWS_SESSION_TOKEN (the execution role's, set by Lambda); without them,
//     the container credentials endpoint AWS_CONTAINER_CREDENTIALS_FULL_URI
//     (or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) with
//     AWS_CONTAINER_AUTHORIZATION_TOKEN or AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
//     which SnapStart functions get instead; like the SDK, a plain-http
//     endpoint must be on a loopback or the ECS/EKS container address;
//   - endpoint: AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL,
//     unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true;
//     AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT;
//   - AWS_MAX_ATTEMPTS (the SDK's standard retryer otherwise).
//
// Shared config and credentials files, profiles, SSO, web identity, assume
// role and instance metadata are not consulted.
func NewClient(getenv func(string) string) (*secretsmanager.Client, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		return nil, errors.New("AWS_REGION is not set")
	}
	provider, err := credentialsProvider(getenv)
	if err != nil {
		return nil, err
	}
	opts := secretsmanager.Options{
		Region: region,
		Credentials: aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = 5 * time.Minute // as the SDK does for container credentials
		}),
	}
	if !isTrue(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
		for _, k := range []string{"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"} {
			if v := getenv(k); v != "" {
				opts.BaseEndpoint = aws.String(v)
				break
			}
		}
	}
	if isTrue(getenv("AWS_USE_FIPS_ENDPOINT")) {
		opts.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
	}
	if isTrue(getenv("AWS_USE_DUALSTACK_ENDPOINT")) {
		opts.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
	}
	if v := getenv("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("AWS_MAX_ATTEMPTS %q is not a whole number ≥ 1", v)
		}
		opts.RetryMaxAttempts = n
	}
	return secretsmanager.New(opts), nil
}

// credentialsProvider picks the environment's credentials, in the order of
// the SDK's default chain: static keys, then the container endpoint.
func credentialsProvider(getenv func(string) string) (aws.CredentialsProvider, error) {
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		return credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN")), nil
	}
	endpoint := getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if rel := getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		endpoint = "http://169.254.170.2" + rel // ECS; takes precedence, as in the SDK
	} else if endpoint != "" {
		if err := checkContainerEndpoint(endpoint); err != nil {
			return nil, err
		}
	}
	if endpoint == "" {
		return nil, errors.New("no AWS credentials in the environment: neither AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set")
	}
	token, tokenFile := getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"), getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
	return endpointcreds.New(endpoint, func(o *endpointcreds.Options) {
		o.AuthorizationToken = token
		if tokenFile != "" {
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return "", fmt.Errorf("read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
				}
				return strings.TrimSpace(string(b)), nil
			})
		}
	}), nil
}

// checkContainerEndpoint accepts https anywhere and http only on a loopback,
// ECS (169.254.170.2) or EKS (169.254.170.23, fd00:ec2::23) address given
// literally or as localhost, so the authorization token never travels in
// clear text off the host.
func checkContainerEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q is not a URL", endpoint)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() ||
			ip.Equal(net.IPv4(169, 254, 170, 2)) || ip.Equal(net.IPv4(169, 254, 170, 23)) || ip.Equal(net.ParseIP("fd00:ec2::23"))) {
			return nil
		}
		return fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q: plain http is allowed only to a loopback or container address", endpoint)
	default:
		return fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI %q is not an http(s) URL", endpoint)
	}
}

func isTrue(v string) bool { return strings.EqualFold(v, "true") }

// Parse decodes a SecretString of the form {"username": "...", "password": "..."}.
func Parse(secretString string) (Credentials, error) {
	var c Credentials
	if err := json.Unmarshal([]byte(secretString), &c); err != nil {
		// The JSON error could quote the secret's bytes; keep only its kind.
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return Credentials{}, fmt.Errorf("secret is not valid JSON (offset %d)", syntaxErr.Offset)
		}
		return Credentials{}, errors.New(`secret must be a JSON object {"username": "...", "password": "..."} of strings`)
	}
	if c.Username == "" || c.Password == "" {
		return Credentials{}, errors.New(`secret must hold non-empty "username" and "password"`)
	}
	return c, nil
}

// Loader fetches credentials once, in the background, starting when it is
// created; Get awaits that fetch. After a failed fetch the next Get tries
// again, so a transient error costs one dispatch, never the credentials for
// the environment's lifetime.
type Loader struct {
	fetch func(context.Context) (Credentials, error)

	mu      sync.Mutex
	done    chan struct{} // closed when the fetch in flight ends
	creds   Credentials
	err     error
	fetched bool
}

// NewLoader starts fetch at once in its own goroutine. ctx bounds that first
// attempt only.
func NewLoader(ctx context.Context, fetch func(context.Context) (Credentials, error)) *Loader {
	l := &Loader{fetch: fetch}
	l.start(ctx)
	return l
}

func (l *Loader) start(ctx context.Context) {
	done := make(chan struct{})
	l.done = done
	go func() {
		creds, err := l.fetch(ctx)
		l.mu.Lock()
		l.creds, l.err, l.fetched = creds, err, err == nil
		l.mu.Unlock()
		close(done)
	}()
}

// Get returns the credentials, waiting for the fetch in flight (or starting a
// new one after a failure) until ctx ends.
func (l *Loader) Get(ctx context.Context) (Credentials, error) {
	l.mu.Lock()
	if l.fetched {
		defer l.mu.Unlock()
		return l.creds, nil
	}
	select {
	case <-l.done: // the last attempt failed: try again, bounded by this caller's ctx
		l.start(ctx)
	default:
	}
	done := l.done
	l.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
		return Credentials{}, fmt.Errorf("waiting for credentials: %w", ctx.Err())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return Credentials{}, l.err
	}
	return l.creds, nil
}
