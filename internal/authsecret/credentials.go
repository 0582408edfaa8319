package authsecret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// credentialsSource yields the credentials to sign a request with.
type credentialsSource interface {
	retrieve(ctx context.Context, client *http.Client) (aws.Credentials, error)
}

// staticCredentials are the keys from the environment.
type staticCredentials aws.Credentials

func (s staticCredentials) retrieve(context.Context, *http.Client) (aws.Credentials, error) {
	return aws.Credentials(s), nil
}

// credentialsFromEnv picks the environment's credentials, in the order of
// the SDK's default chain: static keys, then the container endpoint.
func credentialsFromEnv(getenv func(string) string) (credentialsSource, error) {
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		return staticCredentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "EnvConfigCredentials"}, nil
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
	return &containerCredentials{
		endpoint:  endpoint,
		token:     getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
		tokenFile: getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
		now:       time.Now,
	}, nil
}

// containerCredentials come from the container credentials endpoint, as
// the SDK's credentials/endpointcreds provider gets them: GET endpoint with
// "Authorization: <token>" (the token file's content, re-read on each fetch,
// taking precedence over the token), answered with
//
//	{"AccessKeyId": "...", "SecretAccessKey": "...", "Token": "...", "Expiration": "<RFC 3339>"}
//
// or, on failure, a non-2xx status with {"code": "...", "message": "..."}.
// They are kept until 5 minutes before they expire.
type containerCredentials struct {
	endpoint, token, tokenFile string
	now                        func() time.Time

	mu     sync.Mutex
	cached aws.Credentials
	valid  bool
}

const credentialsExpiryWindow = 5 * time.Minute // as the SDK does for container credentials

func (c *containerCredentials) retrieve(ctx context.Context, client *http.Client) (aws.Credentials, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid && (!c.cached.CanExpire || c.now().Add(credentialsExpiryWindow).Before(c.cached.Expires)) {
		return c.cached, nil
	}
	creds, err := c.fetch(ctx, client)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("container credentials: %w", err)
	}
	c.cached, c.valid = creds, true
	return creds, nil
}

func (c *containerCredentials) fetch(ctx context.Context, client *http.Client) (aws.Credentials, error) {
	token := c.token
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return aws.Credentials{}, fmt.Errorf("read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if strings.ContainsAny(token, "\r\n") {
		return aws.Credentials{}, errors.New("the authorization token contains a line break")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint, nil)
	if err != nil {
		return aws.Credentials{}, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return aws.Credentials{}, &transientError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return aws.Credentials{}, &transientError{fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode/100 != 2 {
		var body struct{ Code, Message string }
		_ = json.Unmarshal(data, &body)
		e := &APIError{StatusCode: resp.StatusCode, Type: body.Code, Message: body.Message}
		if e.Type == "" {
			e.Type = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
		}
		return aws.Credentials{}, e
	}
	// The body holds a secret key: errors must not quote it.
	var out struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      *time.Time
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return aws.Credentials{}, errors.New("the answer is not a JSON credentials object")
	}
	if out.AccessKeyID == "" || out.SecretAccessKey == "" {
		return aws.Credentials{}, errors.New("the answer lacks AccessKeyId or SecretAccessKey")
	}
	creds := aws.Credentials{AccessKeyID: out.AccessKeyID, SecretAccessKey: out.SecretAccessKey, SessionToken: out.Token, Source: "CredentialsEndpointProvider"}
	if out.Expiration != nil {
		creds.CanExpire, creds.Expires = true, *out.Expiration
	}
	return creds, nil
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
