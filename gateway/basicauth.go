package gateway

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Credentials are the basic-auth credentials a gateway accepts.
type Credentials struct {
	// Users maps user names to bcrypt hashes of their passwords: the
	// basic_auth_users of an exporter-toolkit web configuration. Only
	// standard headers (base64 of user:password) match them.
	Users map[string]string
	// PasswordHashes are bcrypt hashes of passwords accepted under any user
	// name, and also sent raw (Authorization: Basic <password>): Gravel
	// Gateway's --basic-auth-file (ParsePasswordHashes).
	PasswordHashes []string
}

// ParsePasswordHashes reads a Gravel Gateway basic-auth file: one bcrypt
// hash per line. Blank lines and surrounding white space are ignored (Gravel
// keeps them as hashes that never match); any other line must be a bcrypt
// hash. Errors name the line, never its content.
func ParsePasswordHashes(r io.Reader) ([]string, error) {
	var hashes []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if _, err := bcrypt.Cost([]byte(line)); err != nil {
			return nil, fmt.Errorf("line %d is not a bcrypt hash", n)
		}
		hashes = append(hashes, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(hashes) == 0 {
		return nil, fmt.Errorf("no bcrypt hash in it")
	}
	return hashes, nil
}

// LoadPasswordHashFile reads a Gravel Gateway basic-auth file (see
// ParsePasswordHashes).
func LoadPasswordHashFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hashes, err := ParsePasswordHashes(f)
	if err != nil {
		return nil, fmt.Errorf("basic-auth file %s: %w", path, err)
	}
	return hashes, nil
}

// Cache bounds of an Authenticator. bcrypt costs 50–100 ms at the usual
// cost 10, so a verdict on a header is remembered: successes (the
// credentials of the few pushers and scrapers) until evicted, failures only
// briefly, so a misconfigured client retrying the same wrong header does
// not burn a CPU each time.
const (
	authCacheSize = 1024
	authFailTTL   = time.Minute
)

// Authenticator checks Authorization headers against Credentials. It is
// safe for concurrent use.
type Authenticator struct {
	users  map[string][]byte
	hashes [][]byte
	// dummy is compared when the user is unknown, so that the answer takes
	// as long as for a known user with a wrong password (no user
	// enumeration by timing): a hash of a random password at the cost of
	// the users' hashes.
	dummy []byte

	key  []byte        // HMAC key of the cache: headers are never kept
	sem  chan struct{} // bounds concurrent bcrypt comparisons
	mu   sync.Mutex
	ok   map[[sha256.Size]byte]struct{}
	fail map[[sha256.Size]byte]time.Time
	now  func() time.Time
}

// NewAuthenticator returns an Authenticator for c. It fails if a hash is not
// a bcrypt hash (the error names the user or the position, never the hash).
func NewAuthenticator(c Credentials) (*Authenticator, error) {
	a := &Authenticator{
		users: make(map[string][]byte, len(c.Users)),
		key:   make([]byte, 32),
		sem:   make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		ok:    map[[sha256.Size]byte]struct{}{},
		fail:  map[[sha256.Size]byte]time.Time{},
		now:   time.Now,
	}
	cost := bcrypt.MinCost
	for u, h := range c.Users {
		c, err := bcrypt.Cost([]byte(h))
		if err != nil {
			return nil, fmt.Errorf("password of user %q is not a bcrypt hash", u)
		}
		cost = max(cost, c)
		a.users[u] = []byte(h)
	}
	for i, h := range c.PasswordHashes {
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return nil, fmt.Errorf("password hash %d is not a bcrypt hash", i+1)
		}
		a.hashes = append(a.hashes, []byte(h))
	}
	if _, err := rand.Read(a.key); err != nil {
		return nil, err
	}
	if len(a.users) > 0 {
		var err error
		if a.dummy, err = bcrypt.GenerateFromPassword([]byte(rand.Text()), cost); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Enabled reports whether any credentials are configured. A nil
// Authenticator is not enabled.
func (a *Authenticator) Enabled() bool {
	return a != nil && (len(a.users) > 0 || len(a.hashes) > 0)
}

// Authenticate reports whether the Authorization header value carries
// accepted credentials:
//
//   - "Basic " + base64(user:password) with a user of Credentials.Users and
//     its password;
//   - "Basic " + base64(anyuser:password), "Basic " + base64(password) or
//     "Basic " + password (no base64, as Gravel Gateway reads it) with a
//     password matching one of Credentials.PasswordHashes.
func (a *Authenticator) Authenticate(header string) bool {
	if !a.Enabled() || header == "" {
		return false
	}
	mac := hmac.New(sha256.New, a.key)
	mac.Write([]byte(header))
	var k [sha256.Size]byte
	mac.Sum(k[:0])

	a.mu.Lock()
	if _, ok := a.ok[k]; ok {
		a.mu.Unlock()
		return true
	}
	if t, ok := a.fail[k]; ok && a.now().Sub(t) < authFailTTL {
		a.mu.Unlock()
		return false
	}
	a.mu.Unlock()

	ok := a.verify(header)

	a.mu.Lock()
	defer a.mu.Unlock()
	if ok {
		if len(a.ok) >= authCacheSize {
			for old := range a.ok { // Evict one, at random.
				delete(a.ok, old)
				break
			}
		}
		a.ok[k] = struct{}{}
		return true
	}
	if len(a.fail) >= authCacheSize {
		now := a.now()
		for old, t := range a.fail {
			if now.Sub(t) >= authFailTTL {
				delete(a.fail, old)
			}
		}
		for old := range a.fail {
			if len(a.fail) < authCacheSize {
				break
			}
			delete(a.fail, old)
		}
	}
	a.fail[k] = a.now()
	return false
}

// verify runs the bcrypt comparisons for an uncached header.
func (a *Authenticator) verify(header string) bool {
	scheme, token, found := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	if !found || !strings.EqualFold(scheme, "Basic") || token == "" {
		return false
	}
	// Passwords to try against PasswordHashes, and a user:password pair.
	var passwords []string
	var user, pass string
	pair := false
	if dec, err := base64.StdEncoding.DecodeString(token); err == nil && utf8.Valid(dec) {
		if u, p, ok := strings.Cut(string(dec), ":"); ok {
			user, pass, pair = u, p, true
			passwords = append(passwords, p)
		} else {
			passwords = append(passwords, string(dec))
		}
	}
	// Gravel's raw password, unless it is the same string.
	if len(passwords) == 0 || passwords[0] != token {
		passwords = append(passwords, token)
	}

	if pair && len(a.users) > 0 {
		h, known := a.users[user]
		if !known {
			h = a.dummy
		}
		if a.compare(h, pass) && known {
			return true
		}
	}
	for _, h := range a.hashes {
		for _, p := range passwords {
			if a.compare(h, p) {
				return true
			}
		}
	}
	return false
}

func (a *Authenticator) compare(hash []byte, password string) bool {
	a.sem <- struct{}{}
	defer func() { <-a.sem }()
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// AuthOptions configures RequireAuth.
type AuthOptions struct {
	// Scrape also requires credentials for the read-only paths: GET and HEAD
	// of /metrics, /, /status, /api/v1/metrics and /api/v1/status. Pushes,
	// deletes, the admin API and /-/quit always require them; /-/healthy and
	// /-/ready never do.
	Scrape bool
	// Logger receives refused requests (debug; never their credentials) and
	// credential errors. Nil discards.
	Logger *slog.Logger
}

// RequireAuth wraps next with basic authentication by path (AuthOptions).
// current returns the Authenticator in force at each request (so that
// credential files may be reloaded); nil or one without credentials lets
// every request through, an error answers 500 where credentials are needed.
// Refusals answer 401 with WWW-Authenticate: Basic.
func RequireAuth(next http.Handler, current func() (*Authenticator, error), opts AuthOptions) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := current()
		if !AuthRequired(r, opts.Scrape) {
			next.ServeHTTP(w, r)
			return
		}
		if err != nil {
			logger.Error("cannot load credentials", "err", err)
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			return
		}
		if !a.Enabled() || a.Authenticate(r.Header.Get("Authorization")) {
			next.ServeHTTP(w, r)
			return
		}
		logger.Debug("unauthenticated request refused", "method", r.Method, "path", r.URL.EscapedPath(), "remote", r.RemoteAddr, "credentials_sent", r.Header.Get("Authorization") != "")
		w.Header().Set("WWW-Authenticate", `Basic realm="gateway", charset="UTF-8"`)
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
	})
}

// AuthRequired reports whether RequireAuth asks r for credentials: always
// but for health checks (/-/healthy, /-/ready) and, unless scrape is true,
// reads (GET, HEAD) of /metrics, the status page and the JSON API.
func AuthRequired(r *http.Request, scrape bool) bool {
	path := r.URL.EscapedPath()
	switch path {
	case "/-/healthy", "/-/ready":
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return true
	}
	switch path {
	case "/metrics", "/", "/status", "/api/v1/metrics", "/api/v1/status":
		return scrape
	}
	return true
}
