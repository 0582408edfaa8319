package authsecret

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Protocol constants of GetSecretValue, from the Secrets Manager API
// reference
// (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html)
// and its AWS JSON 1.1 protocol.
const (
	signingName     = "secretsmanager" // SigV4 service name
	contentType     = "application/x-amz-json-1.1"
	targetOperation = "secretsmanager.GetSecretValue"
)

const (
	defaultMaxAttempts = 3                // as the SDK's standard retryer
	attemptTimeout     = 10 * time.Second // one request, response body included
	backoffBase        = 100 * time.Millisecond
	backoffMax         = 5 * time.Second
	maxResponseBytes   = 1 << 20 // a SecretString is at most 64 KiB
	userAgent          = "prometheus-lambda-extension (authsecret)"
)

// Client calls Secrets Manager's GetSecretValue. Make one with NewClient.
//
// Each call is one HTTP request:
//
//	POST / HTTP/1.1                      (or a configured endpoint URL's path)
//	Host: secretsmanager.<region>.amazonaws.com
//	Content-Type: application/x-amz-json-1.1
//	X-Amz-Target: secretsmanager.GetSecretValue
//	X-Amz-Date, X-Amz-Security-Token, Authorization   (SigV4, service "secretsmanager")
//
//	{"SecretId":"<name or ARN>"}
//
// answered with {"SecretString": "...", ...} (or "SecretBinary"), or with
// an error whose type is in X-Amzn-ErrorType or "__type" and whose text is
// in "message" or "Message". Requests are signed with Signature Version 4
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html) by
// the AWS SDK for Go v2's signer (aws/signer/v4), over the hex SHA-256 of
// the body.
//
// Throttling, 5xx answers and transport errors are retried, up to
// AWS_MAX_ATTEMPTS attempts in all (3 by default), after a jittered
// exponential backoff; each attempt is bounded by a 10s timeout and all of
// them by the caller's context.
type Client struct {
	region      string
	url         string // the POST target
	creds       credentialsSource
	maxAttempts int
	http        *http.Client
	signer      *v4.Signer
	now         func() time.Time
	backoff     func(retry int) time.Duration // delay before retry number retry (1, 2, …)
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
//     unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true; otherwise
//     https://secretsmanager.<region>.<partition's DNS suffix>, with
//     AWS_USE_FIPS_ENDPOINT (secretsmanager-fips.…) and
//     AWS_USE_DUALSTACK_ENDPOINT as in the SDK's endpoint rules for Secrets
//     Manager (see endpointFor; in the aws, aws-us-gov and aws-cn
//     partitions the regular host names are dual-stack); as there, FIPS
//     or dual-stack together with a configured endpoint URL is an error;
//   - AWS_MAX_ATTEMPTS, the number of attempts per call (3 otherwise).
//
// Shared config and credentials files, profiles, SSO, web identity, assume
// role and instance metadata are not consulted. NewClient makes no request:
// container credentials are fetched on the first call.
func NewClient(getenv func(string) string) (*Client, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		return nil, errors.New("AWS_REGION is not set")
	}
	if !validHostLabel(region) {
		return nil, fmt.Errorf("AWS region %q is not a valid host label", region)
	}
	creds, err := credentialsFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	fips, dualStack := isTrue(getenv("AWS_USE_FIPS_ENDPOINT")), isTrue(getenv("AWS_USE_DUALSTACK_ENDPOINT"))
	var configured string
	if !isTrue(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) {
		for _, k := range []string{"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"} {
			if v := getenv(k); v != "" {
				configured = v
				break
			}
		}
	}
	endpoint, err := endpointFor(region, configured, fips, dualStack)
	if err != nil {
		return nil, err
	}
	maxAttempts := defaultMaxAttempts
	if v := getenv("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("AWS_MAX_ATTEMPTS %q is not a whole number ≥ 1", v)
		}
		maxAttempts = n
	}
	return &Client{
		region:      region,
		url:         endpoint,
		creds:       creds,
		maxAttempts: maxAttempts,
		http:        &http.Client{Timeout: attemptTimeout},
		signer:      v4.NewSigner(),
		now:         time.Now,
		backoff:     jitteredBackoff,
	}, nil
}

// jitteredBackoff is "full jitter" exponential backoff: a uniformly random
// delay below min(backoffMax, backoffBase·2^(retry-1)).
func jitteredBackoff(retry int) time.Duration {
	ceiling := backoffMax
	if retry < 16 {
		ceiling = min(backoffMax, backoffBase<<(retry-1))
	}
	return rand.N(ceiling) + 1
}

// APIError is an error answer of the Secrets Manager API, e.g.
// ResourceNotFoundException, AccessDeniedException or
// InvalidSignatureException (see the Errors of GetSecretValue in the API
// reference and the common errors of AWS APIs).
type APIError struct {
	StatusCode int    // HTTP status
	Type       string // error type, e.g. "ResourceNotFoundException"
	Message    string // the service's message, may be empty
}

func (e *APIError) Error() string {
	s := e.Type
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s + " (HTTP " + strconv.Itoa(e.StatusCode) + ")"
}

// throttlingTypes are the error types the SDK's standard retryer treats as
// throttling (aws/retry DefaultThrottleErrorCodes) or as retryable timeouts.
var throttlingTypes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "ThrottledException": true,
	"RequestThrottledException": true, "TooManyRequestsException": true,
	"ProvisionedThroughputExceededException": true, "TransactionInProgressException": true,
	"RequestLimitExceeded": true, "BandwidthLimitExceeded": true, "LimitExceededException": true,
	"RequestThrottled": true, "SlowDown": true, "PriorRequestNotComplete": true,
	"EC2ThrottledException": true, "RequestTimeout": true, "RequestTimeoutException": true,
}

// retryable reports whether another attempt may succeed: throttling, 429
// and 500/502/503/504 answers, transport errors and per-attempt timeouts.
func (e *APIError) retryable() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return throttlingTypes[e.Type]
}

// transientError marks a failure worth another attempt (transport errors).
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func isRetryable(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.retryable()
	}
	var t *transientError
	return errors.As(err, &t)
}

// GetSecretString returns the SecretString of the secret secretID (a name
// or an ARN), in its current version (AWSCURRENT). A secret holding only a
// SecretBinary is an error. Refusals are *APIError; the returned error
// never holds the secret's value.
func (c *Client) GetSecretString(ctx context.Context, secretID string) (string, error) {
	body, err := json.Marshal(struct {
		SecretId string
	}{secretID})
	if err != nil {
		return "", err
	}
	for attempt := 1; ; attempt++ {
		s, err := c.getSecretString(ctx, body)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			if !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return "", err
		}
		if attempt >= c.maxAttempts || !isRetryable(err) {
			if attempt > 1 {
				return "", fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return "", err
		}
		t := time.NewTimer(c.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w while waiting to retry after: %w", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// getSecretString makes one attempt.
func (c *Client) getSecretString(ctx context.Context, body []byte) (string, error) {
	creds, err := c.creds.retrieve(ctx, c.http)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", targetOperation)
	req.Header.Set("User-Agent", userAgent) // not signed
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), signingName, c.region, c.now().UTC()); err != nil {
		return "", fmt.Errorf("sign request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", &transientError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return "", &transientError{fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode/100 != 2 {
		return "", parseAPIError(resp, data)
	}
	if len(data) > maxResponseBytes {
		return "", fmt.Errorf("response is larger than %d bytes", maxResponseBytes)
	}
	var out struct {
		SecretString *string
		SecretBinary *string // base64; only its presence matters
	}
	if err := json.Unmarshal(data, &out); err != nil {
		// As in Parse: the decoder's message could quote the secret.
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return "", fmt.Errorf("response is not valid JSON (offset %d)", syntaxErr.Offset)
		}
		return "", errors.New("response is not a GetSecretValue result")
	}
	if out.SecretString == nil {
		if out.SecretBinary != nil {
			return "", errors.New("the secret has a SecretBinary and no SecretString (binary secrets are not supported)")
		}
		return "", errors.New("the response has no SecretString")
	}
	return *out.SecretString, nil
}

// parseAPIError reads an AWS JSON 1.1 error answer: the type is in the
// X-Amzn-ErrorType header or the body's "__type" (or "code"), possibly as
// "namespace#Type:extra", the text in "message" or "Message".
func parseAPIError(resp *http.Response, data []byte) *APIError {
	var body struct {
		Type         string `json:"__type"`
		Code         string `json:"code"`
		Message      string `json:"message"`
		MessageUpper string `json:"Message"`
	}
	_ = json.Unmarshal(data, &body) // a non-JSON body (a proxy's page) leaves only the status
	e := &APIError{StatusCode: resp.StatusCode, Message: body.Message}
	if e.Message == "" {
		e.Message = body.MessageUpper
	}
	for _, t := range []string{resp.Header.Get("X-Amzn-ErrorType"), body.Type, body.Code} {
		if t != "" {
			e.Type = sanitizeErrorType(t)
			break
		}
	}
	if e.Type == "" {
		e.Type = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
		if e.Type == "" {
			e.Type = "UnknownError"
		}
	}
	if len(e.Message) > 512 {
		e.Message = e.Message[:512] + "…"
	}
	return e
}

// sanitizeErrorType keeps the shape name of an error type
// ("aws.protocoltests#FooError:http://…" → "FooError"), as the AWS JSON
// protocol specifies.
func sanitizeErrorType(t string) string {
	if i := strings.IndexByte(t, ':'); i >= 0 {
		t = t[:i]
	}
	if i := strings.LastIndexByte(t, '#'); i >= 0 {
		t = t[i+1:]
	}
	return strings.TrimSpace(t)
}

// endpointFor returns the URL to POST to: the configured endpoint URL if
// any, else the one the SDK's endpoint rules for Secrets Manager
// (service/secretsmanager endpoints.go, with the partitions of
// internal/endpoints/awsrulesfn) resolve for region:
//
//	plain:            https://secretsmanager.<region>.<dnsSuffix>
//	FIPS:             https://secretsmanager-fips.<region>.<dnsSuffix>
//	dual-stack:       https://secretsmanager.<region>.<dualStackDnsSuffix>
//	FIPS, dual-stack: https://secretsmanager-fips.<region>.<dualStackDnsSuffix>
//
// where the suffixes are amazonaws.com and api.aws for aws and aws-us-gov,
// amazonaws.com.cn and api.amazonwebservices.com.cn for aws-cn, and so on
// (see partitions) — except that Secrets Manager's regular endpoints are
// dual-stack already in aws and aws-us-gov (so dual-stack keeps
// amazonaws.com there, FIPS or not) and in aws-cn without FIPS (so it keeps
// amazonaws.com.cn). For example, in us-east-1 dual-stack is
// https://secretsmanager.us-east-1.amazonaws.com, not ….api.aws.
// The operation's path "/" is joined to a configured endpoint's path as
// the SDK does: http://host → /, http://host/base → /base.
func endpointFor(region, configured string, fips, dualStack bool) (string, error) {
	if configured != "" {
		if fips {
			return "", errors.New("invalid configuration: FIPS and custom endpoint are not supported")
		}
		if dualStack {
			return "", errors.New("invalid configuration: dualstack and custom endpoint are not supported")
		}
		u, err := url.Parse(configured)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("endpoint URL %q is not an http(s) URL", configured)
		}
		u.Path = joinPath(u.Path, "/")
		u.RawPath = ""
		return u.String(), nil
	}
	p := partitionOf(region)
	host := "secretsmanager"
	if fips {
		host += "-fips"
	}
	suffix := p.dnsSuffix
	if dualStack {
		switch {
		case p.id == "aws" || p.id == "aws-us-gov":
			// dual-stack already: keep dnsSuffix
		case p.id == "aws-cn" && !fips:
			// likewise
		default:
			suffix = p.dualStackDNSSuffix
		}
	}
	return "https://" + host + "." + region + "." + suffix + "/", nil
}

// joinPath is smithy-go's transport/http.JoinPath.
func joinPath(a, b string) string {
	if len(a) == 0 {
		a = "/"
	} else if a[0] != '/' {
		a = "/" + a
	}
	if len(b) != 0 && b[0] == '/' {
		b = b[1:]
	}
	if len(b) != 0 && len(a) > 1 && a[len(a)-1] != '/' {
		a = a + "/"
	}
	return a + b
}

type partition struct {
	id                 string
	regionPrefix       string // the regionRegex ^<prefix>\w+-\d+$, as a prefix
	dnsSuffix          string
	dualStackDNSSuffix string
}

// partitions are the SDK's (aws-sdk-go-v2 internal/endpoints/awsrulesfn
// partitions.json); all of them support FIPS and dual-stack. A region
// matching none is in aws, as in the SDK.
var partitions = []partition{
	{"aws", "", "amazonaws.com", "api.aws"}, // ^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$
	{"aws-cn", "cn-", "amazonaws.com.cn", "api.amazonwebservices.com.cn"},
	{"aws-eusc", "eusc-de-", "amazonaws.eu", "api.amazonwebservices.eu"},
	{"aws-iso", "us-iso-", "c2s.ic.gov", "api.aws.ic.gov"},
	{"aws-iso-b", "us-isob-", "sc2s.sgov.gov", "api.aws.scloud"},
	{"aws-iso-e", "eu-isoe-", "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"},
	{"aws-iso-f", "us-isof-", "csp.hci.ic.gov", "api.aws.hci.ic.gov"},
	{"aws-us-gov", "us-gov-", "amazonaws.com", "api.aws"},
}

// partitionOf finds region's partition as awsrulesfn.GetPartition does:
// by name for the "<partition>-global" pseudo-regions, else by the
// partition's region pattern <prefix>\w+-\d+ (the aws partition's pattern
// matches no other partition's regions, so it need not be checked).
func partitionOf(region string) partition {
	for _, p := range partitions[1:] {
		if region == p.id+"-global" || matchesRegion(region, p.regionPrefix) {
			return p
		}
	}
	return partitions[0]
}

// matchesRegion reports whether region matches ^prefix\w+-\d+$.
func matchesRegion(region, prefix string) bool {
	rest, ok := strings.CutPrefix(region, prefix)
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 || i == len(rest)-1 {
		return false
	}
	for _, r := range rest[:i] {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	for _, r := range rest[i+1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// validHostLabel reports whether s may stand in a host name: letters,
// digits and inner hyphens, as the SDK's region validation demands.
func validHostLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
