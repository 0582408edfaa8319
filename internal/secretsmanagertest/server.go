// Package secretsmanagertest serves the one AWS Secrets Manager operation the
// extension uses, GetSecretValue, on a loopback address, so tests can point
// the real AWS SDK for Go v2 at it through AWS_ENDPOINT_URL_SECRETS_MANAGER.
//
// It speaks the AWS JSON 1.1 protocol as documented in the Secrets Manager API
// reference (GetSecretValue): POST / with X-Amz-Target
// "secretsmanager.GetSecretValue" and a body {"SecretId": "..."}.
package secretsmanagertest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Server is a fake Secrets Manager endpoint. Secrets are looked up by name
// or by ARN.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	secrets  map[string]string // name → SecretString
	failures int               // answer this many requests with 500 first
	requests int
}

// NewServer starts a server on 127.0.0.1 holding secrets (name → SecretString).
// Close it when done.
func NewServer(secrets map[string]string) *Server {
	s := &Server{secrets: make(map[string]string, len(secrets))}
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

// Requests reports how many GetSecretValue requests arrived, failed ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// FailNext makes the next n requests answer 500 InternalServiceError.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = n
}

// ARN returns the ARN the server reports for a secret name.
func ARN(name string) string {
	return "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + name + "-AbCdEf"
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	fail := s.failures > 0
	if fail {
		s.failures--
	}
	s.mu.Unlock()

	switch {
	case r.Method != http.MethodPost:
		writeError(w, http.StatusMethodNotAllowed, "InvalidRequestException", "method not allowed")
	case r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue":
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "unsupported target "+r.Header.Get("X-Amz-Target"))
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		// The real service rejects unsigned requests; so do we, to prove the SDK signed it.
		writeError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "request is not signed")
	case fail:
		writeError(w, http.StatusInternalServerError, "InternalServiceError", "injected failure")
	default:
		s.getSecretValue(w, r)
	}
}

func (s *Server) getSecretValue(w http.ResponseWriter, r *http.Request) {
	var in struct{ SecretId string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.SecretId == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterException", "SecretId is required")
		return
	}
	s.mu.Lock()
	var name, value string
	var ok bool
	for n, v := range s.secrets {
		if in.SecretId == n || in.SecretId == ARN(n) {
			name, value, ok = n, v, true
			break
		}
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ARN":           ARN(name),
		"Name":          name,
		"SecretString":  value,
		"VersionId":     "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1",
		"VersionStages": []string{"AWSCURRENT"},
		"CreatedDate":   float64(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Unix()),
	})
}

func writeError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", errType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": errType, "message": msg})
}
