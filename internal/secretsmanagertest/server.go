// Package secretsmanagertest serves the one AWS Secrets Manager operation the
// extension uses, GetSecretValue, on a loopback address, so tests can point
// a client at it through AWS_ENDPOINT_URL_SECRETS_MANAGER.
//
// It speaks the AWS JSON 1.1 protocol as documented in the Secrets Manager API
// reference (GetSecretValue,
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html):
// POST / with Content-Type "application/x-amz-json-1.1", X-Amz-Target
// "secretsmanager.GetSecretValue" and a body {"SecretId": "..."}; the answer
// is {"ARN", "Name", "SecretString" or "SecretBinary", "VersionId", ...} and
// errors are {"__type": "...", "message": "..."} with the type repeated in
// X-Amzn-ErrorType.
//
// Like the service, it authenticates every request with Signature Version 4
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html): it
// recomputes the signature with the AWS SDK for Go v2's signer from the
// secret key it knows for the request's access key (AccessKeyID and
// SecretAccessKey, plus any added with AllowCredentials) over the headers the
// request says it signed and the body it carried, and answers 403
// UnrecognizedClientException for an unknown key, 403
// InvalidSignatureException for a wrong signature (or a signing time more
// than 15 minutes off), and 400 MissingAuthenticationTokenException for an
// unsigned request. A client it answers has therefore signed its request
// exactly as the SDK would.
package secretsmanagertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
)

// The credentials every Server accepts: the example keys of the AWS
// documentation, safe to put into a test's environment.
const (
	AccessKeyID     = "AKIDEXAMPLE"
	SecretAccessKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

// Request is what the server recorded of one request it authenticated.
type Request struct {
	Method string
	Path   string
	Host   string
	Header http.Header // as received; Host is in the Host field
	Body   []byte
	// CanonicalRequest is the SigV4 canonical request the server recomputed
	// to check the signature: method, path, query, the signed headers with
	// their values, the signed header names and the payload hash.
	CanonicalRequest string
}

// Server is a fake Secrets Manager endpoint. Secrets are looked up by name
// or by ARN.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	secrets    map[string]string // name → SecretString
	binary     map[string][]byte // name → SecretBinary
	keys       map[string]string // access key ID → secret access key
	failures   int               // answer this many requests with failStatus/failType first
	failStatus int
	failType   string
	requests   int
	last       *Request
	now        func() time.Time
}

// NewServer starts a server on 127.0.0.1 holding secrets (name → SecretString).
// Close it when done.
func NewServer(secrets map[string]string) *Server {
	s := &Server{
		secrets: make(map[string]string, len(secrets)),
		binary:  make(map[string][]byte),
		keys:    map[string]string{AccessKeyID: SecretAccessKey},
		now:     time.Now,
	}
	for name, value := range secrets {
		s.secrets[name] = value
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint to put into AWS_ENDPOINT_URL_SECRETS_MANAGER.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Requests reports how many GetSecretValue requests arrived, failed ones
// included (but not those refused before authentication: wrong method or
// target, bad signature).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// LastRequest returns the last authenticated request, and false if none came.
func (s *Server) LastRequest() (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return Request{}, false
	}
	r := *s.last
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	return r, true
}

// FailNext makes the next n requests answer 500 InternalServiceError.
func (s *Server) FailNext(n int) {
	s.FailNextWith(n, http.StatusInternalServerError, "InternalServiceError")
}

// FailNextWith makes the next n authenticated requests answer status with
// the error type errType, e.g. 400 ThrottlingException.
func (s *Server) FailNextWith(n, status int, errType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures, s.failStatus, s.failType = n, status, errType
}

// AllowCredentials makes the server accept requests signed with this key
// pair too, e.g. credentials a test's container endpoint hands out.
func (s *Server) AllowCredentials(accessKeyID, secretAccessKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[accessKeyID] = secretAccessKey
}

// SetBinarySecret adds a secret that has a SecretBinary and no SecretString.
func (s *Server) SetBinarySecret(name string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.binary[name] = bytes.Clone(value)
}

// SetClock makes the server judge signing times against now instead of the
// wall clock, for clients signing at a fixed time.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// ARN returns the ARN the server reports for a secret name.
func ARN(name string) string {
	return "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + name + "-AbCdEf"
}

const maxBody = 1 << 20

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestException", "cannot read the body")
		return
	}
	switch {
	case r.Method != http.MethodPost:
		writeError(w, http.StatusMethodNotAllowed, "InvalidRequestException", "method not allowed")
		return
	case r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue":
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "unsupported target "+r.Header.Get("X-Amz-Target"))
		return
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		writeError(w, http.StatusBadRequest, "SerializationException", "Content-Type must be application/x-amz-json-1.1")
		return
	}
	canonical, status, errType, msg := s.authenticate(r, body)
	if errType != "" {
		writeError(w, status, errType, msg)
		return
	}

	s.mu.Lock()
	s.requests++
	s.last = &Request{Method: r.Method, Path: r.URL.Path, Host: r.Host, Header: r.Header.Clone(), Body: body, CanonicalRequest: canonical}
	fail := s.failures > 0
	failStatus, failType := s.failStatus, s.failType
	if fail {
		s.failures--
	}
	s.mu.Unlock()
	if fail {
		writeError(w, failStatus, failType, "injected failure")
		return
	}
	s.getSecretValue(w, body)
}

// authenticate checks r's SigV4 Authorization header, returning the
// canonical request it recomputed, or the error to answer.
func (s *Server) authenticate(r *http.Request, body []byte) (canonical string, status int, errType, msg string) {
	auth := r.Header.Get("Authorization")
	const algorithm = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algorithm) {
		// The real service rejects unsigned requests; so do we, to prove the client signed it.
		return "", http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token"
	}
	var credential, signedHeaders string
	for _, part := range strings.Split(strings.TrimPrefix(auth, algorithm), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		}
	}
	// Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[3] != "secretsmanager" || scope[4] != "aws4_request" || signedHeaders == "" {
		return "", http.StatusBadRequest, "IncompleteSignatureException", "malformed Authorization header"
	}
	keyID, region := scope[0], scope[2]
	s.mu.Lock()
	secretKey, known := s.keys[keyID]
	now := s.now()
	s.mu.Unlock()
	if !known {
		return "", http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signingTime.Format("20060102") != scope[1] {
		return "", http.StatusBadRequest, "IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope"
	}
	if d := now.Sub(signingTime); d > 15*time.Minute || d < -15*time.Minute {
		return "", http.StatusForbidden, "InvalidSignatureException", "Signature expired: the signing time is more than 15 minutes from the server's time"
	}

	// Re-sign a copy holding only what the client says it signed.
	names := strings.Split(signedHeaders, ";")
	if !containsString(names, "host") || !containsString(names, "x-amz-date") {
		return "", http.StatusBadRequest, "IncompleteSignatureException", "host and x-amz-date must be signed"
	}
	check, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return "", http.StatusBadRequest, "IncompleteSignatureException", "bad request URI"
	}
	check.Host = r.Host
	check.ContentLength = -1
	for _, name := range names {
		switch name {
		case "host":
		case "content-length":
			check.ContentLength = int64(len(body))
		default:
			vs := r.Header.Values(name)
			if len(vs) == 0 {
				return "", http.StatusForbidden, "InvalidSignatureException", "signed header " + name + " is missing"
			}
			check.Header[http.CanonicalHeaderKey(name)] = vs
		}
	}
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secretKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	payloadHash := sha256.Sum256(body)
	var log canonicalLogger
	err = v4.NewSigner().SignHTTP(context.Background(), creds, check, hex.EncodeToString(payloadHash[:]), "secretsmanager", region, signingTime,
		func(o *v4.SignerOptions) { o.LogSigning, o.Logger = true, &log })
	if err != nil {
		return "", http.StatusInternalServerError, "InternalServiceError", "cannot recompute the signature"
	}
	if check.Header.Get("Authorization") != auth {
		return "", http.StatusForbidden, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	}
	return log.canonical, 0, "", ""
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// canonicalLogger keeps the canonical request from the signer's debug log.
type canonicalLogger struct{ canonical string }

func (l *canonicalLogger) Logf(_ logging.Classification, format string, v ...any) {
	if len(v) > 0 {
		if s, ok := v[0].(string); ok && strings.HasPrefix(format, "Request Signature:") {
			l.canonical = s
		}
	}
}

func (s *Server) getSecretValue(w http.ResponseWriter, body []byte) {
	var in struct{ SecretId string }
	if err := json.Unmarshal(body, &in); err != nil || in.SecretId == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "SecretId is required")
		return
	}
	out := map[string]any{
		"VersionId":     "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1",
		"VersionStages": []string{"AWSCURRENT"},
		"CreatedDate":   float64(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Unix()),
	}
	found := false
	s.mu.Lock()
	for n, v := range s.secrets {
		if in.SecretId == n || in.SecretId == ARN(n) {
			out["ARN"], out["Name"], out["SecretString"], found = ARN(n), n, v, true
			break
		}
	}
	for n, v := range s.binary {
		if !found && (in.SecretId == n || in.SecretId == ARN(n)) {
			out["ARN"], out["Name"], out["SecretBinary"], found = ARN(n), n, base64.StdEncoding.EncodeToString(v), true
		}
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func writeError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", errType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": errType, "message": msg})
}
