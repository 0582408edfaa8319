// Package authsecret reads the gateway's basic-auth credentials from an AWS
// Secrets Manager secret, off the extension's start path.
//
// The secret's SecretString is JSON: {"username": "...", "password": "..."}.
// It is read with one GetSecretValue call that this package builds itself
// (AWS JSON 1.1 protocol, see Client) and signs with the AWS SDK for Go v2's
// Signature Version 4 signer, configured from the environment Lambda gives
// an extension (see NewClient). The SDK's Secrets Manager client, with its
// operation stack and endpoint rules, and config.LoadDefaultConfig, whose
// chain (shared files, SSO, STS, IMDS, …) serves nothing inside Lambda, were
// most of the layer binary's size for this one call.
package authsecret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
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

// Fetch reads the secret named by secretID (a name or an ARN) with a Client
// configured from the process environment (NewClient(os.Getenv)) and parses
// its SecretString. Errors name the secret, and for a refusal the service's
// error type and message (see APIError), but never the secret's content.
func Fetch(ctx context.Context, secretID string) (Credentials, error) {
	client, err := NewClient(os.Getenv)
	if err != nil {
		return Credentials{}, err
	}
	s, err := client.GetSecretString(ctx, secretID)
	if err != nil {
		return Credentials{}, fmt.Errorf("get secret %q: %w", secretID, err)
	}
	c, err := Parse(s)
	if err != nil {
		return Credentials{}, fmt.Errorf("secret %q: %w", secretID, err)
	}
	return c, nil
}

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
