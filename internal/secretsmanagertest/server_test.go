package secretsmanagertest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// sdkClient is the real SDK's Secrets Manager client pointed at srv, signing
// with the given keys and sending through transport (nil: the default).
func sdkClient(srv *Server, keyID, secret, token string, transport http.RoundTripper) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(srv.URL()),
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, token),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: transport},
	})
}

func apiErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// TestSDKClient runs the real SDK client against the fake: it must be
// answered, and its requests authenticated by the fake's SigV4 check.
func TestSDKClient(t *testing.T) {
	srv := NewServer(map[string]string{"gateway-auth": `{"username":"lambda","password":"s3cr3t"}`})
	defer srv.Close()
	srv.SetBinarySecret("binary", []byte{0, 1, 2})

	for _, token := range []string{"", "session-token"} {
		c := sdkClient(srv, AccessKeyID, SecretAccessKey, token, nil)
		for _, id := range []string{"gateway-auth", ARN("gateway-auth")} {
			out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
			if err != nil {
				t.Fatalf("GetSecretValue(%q) with session token %q: %v", id, token, err)
			}
			if aws.ToString(out.SecretString) != `{"username":"lambda","password":"s3cr3t"}` || aws.ToString(out.ARN) != ARN("gateway-auth") {
				t.Fatalf("GetSecretValue(%q) = %+v", id, out)
			}
		}
		last, ok := srv.LastRequest()
		if !ok || !strings.Contains(last.CanonicalRequest, "x-amz-target:secretsmanager.GetSecretValue\n") {
			t.Fatalf("last request %+v: want its canonical request recorded", last)
		}
		if got := last.Header.Get("X-Amz-Security-Token"); got != token {
			t.Errorf("X-Amz-Security-Token = %q, want %q", got, token)
		}
	}

	c := sdkClient(srv, AccessKeyID, SecretAccessKey, "", nil)
	out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("binary")})
	if err != nil || out.SecretString != nil || !bytes.Equal(out.SecretBinary, []byte{0, 1, 2}) {
		t.Fatalf("GetSecretValue(binary) = %+v, %v; want SecretBinary only", out, err)
	}
	_, err = c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
	if apiErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("GetSecretValue(missing) error = %v, want ResourceNotFoundException", err)
	}

	srv.FailNextWith(1, http.StatusBadRequest, "ThrottlingException")
	_, err = c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("gateway-auth")})
	if apiErrorCode(err) != "ThrottlingException" {
		t.Fatalf("error = %v, want the injected ThrottlingException", err)
	}
}

// TestRejectsBadSignatures proves the fake checks signatures rather than
// their presence: wrong keys, unknown keys and requests altered after
// signing are refused as the service refuses them.
func TestRejectsBadSignatures(t *testing.T) {
	srv := NewServer(map[string]string{"gateway-auth": `{"username":"lambda","password":"s3cr3t"}`})
	defer srv.Close()
	get := func(c *secretsmanager.Client) error {
		_, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("gateway-auth")})
		return err
	}

	if code := apiErrorCode(get(sdkClient(srv, AccessKeyID, "wrong-secret", "", nil))); code != "InvalidSignatureException" {
		t.Errorf("wrong secret key: error code %q, want InvalidSignatureException", code)
	}
	if code := apiErrorCode(get(sdkClient(srv, "AKIDUNKNOWN", SecretAccessKey, "", nil))); code != "UnrecognizedClientException" {
		t.Errorf("unknown access key: error code %q, want UnrecognizedClientException", code)
	}
	srv.AllowCredentials("AKIDOTHER", "other-secret")
	if err := get(sdkClient(srv, "AKIDOTHER", "other-secret", "", nil)); err != nil {
		t.Errorf("credentials added with AllowCredentials: %v", err)
	}

	for name, c := range map[string]struct {
		tamper func(*http.Request)
		code   string
	}{
		"body":              {func(r *http.Request) { setBody(r, `{"SecretId":"gateway-auth" }`) }, "InvalidSignatureException"},
		"signed header":     {func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "other") }, "InvalidSignatureException"},
		"signing time":      {shiftSigningTime, "InvalidSignatureException"},
		"path":              {func(r *http.Request) { r.URL.Path = "/other" }, "InvalidSignatureException"},
		"date out of scope": {func(r *http.Request) { r.Header.Set("X-Amz-Date", "20000101T000000Z") }, "IncompleteSignatureException"},
		"unsigned":          {func(r *http.Request) { r.Header.Del("Authorization") }, "MissingAuthenticationTokenException"},
	} {
		err := get(sdkClient(srv, AccessKeyID, SecretAccessKey, "token", tamperingTransport(c.tamper)))
		if code := apiErrorCode(err); code != c.code {
			t.Errorf("request with tampered %s: error %v, want %s", name, err, c.code)
		}
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("Requests() = %d, want 1 (only authenticated requests count)", n)
	}
}

func setBody(r *http.Request, body string) {
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
}

// shiftSigningTime moves X-Amz-Date by a second within its minute, so the
// date stays in the credential scope and only the signature is wrong.
func shiftSigningTime(r *http.Request) {
	t, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return
	}
	if t.Second() == 59 {
		t = t.Add(-time.Second)
	} else {
		t = t.Add(time.Second)
	}
	r.Header.Set("X-Amz-Date", t.Format("20060102T150405Z"))
}

type tamperingTransport func(*http.Request)

func (f tamperingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	f(r)
	return http.DefaultTransport.RoundTrip(r)
}
