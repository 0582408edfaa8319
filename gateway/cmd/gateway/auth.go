package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

// The web configuration's basic_auth_users are checked by the gateway
// (gateway.RequireAuth) instead of exporter-toolkit, which would ask every
// path for credentials, health checks included. exporter-toolkit keeps TLS,
// rate_limit and http_server_config: it is given a copy of the web
// configuration without basic_auth_users (relative file paths made
// absolute), in a private temporary directory, rewritten whenever the
// original changes.

// authFiles holds the credentials of --web.config.file and
// --basic-auth-file, reloaded when either file changes.
type authFiles struct {
	webConfig string // original --web.config.file, or ""
	hashFile  string // --basic-auth-file, or ""
	derived   string // exporter-toolkit's copy of webConfig, or ""
	logger    *slog.Logger

	// state is what Current returns; checked is when the files were last
	// stat'ed (Unix ns). Requests read both without the lock: only a
	// re-check, at most once per credentialsRecheck, takes mu.
	state   atomic.Pointer[authState]
	checked atomic.Int64

	mu    sync.Mutex // guards stamp and reloading
	stamp [2]fileStamp
}

// authState is the Authenticator in force, or why there is none.
type authState struct {
	current *gateway.Authenticator
	err     error
}

// credentialsRecheck is how often the credential files are stat'ed for
// changes: every request would put two syscalls and a lock on every push.
var credentialsRecheck = time.Second

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}

// newAuthFiles validates the files and loads them. With a web
// configuration it writes exporter-toolkit's copy into dir, whose path
// DerivedWebConfig returns.
func newAuthFiles(webConfig, hashFile, dir string, logger *slog.Logger) (*authFiles, error) {
	a := &authFiles{webConfig: webConfig, hashFile: hashFile, logger: logger}
	if webConfig != "" {
		// exporter-toolkit's own validation: users' hashes, headers, TLS.
		if err := web.Validate(webConfig); err != nil {
			return nil, fmt.Errorf("--web.config.file %s: %w", webConfig, err)
		}
		a.derived = filepath.Join(dir, "web-config.yml")
	}
	a.stamp = [2]fileStamp{stampOf(webConfig), stampOf(hashFile)}
	if err := a.load(); err != nil {
		return nil, err
	}
	a.checked.Store(time.Now().UnixNano())
	return a, nil
}

// DerivedWebConfig is the web configuration file to give exporter-toolkit.
func (a *authFiles) DerivedWebConfig() string { return a.derived }

// Current returns the Authenticator in force, reloading the files if they
// changed (checked at most once per credentialsRecheck). A failed reload
// fails closed: credentials are refused (500) until the files are fixed.
func (a *authFiles) Current() (*gateway.Authenticator, error) {
	now := time.Now().UnixNano()
	if last := a.checked.Load(); now-last >= int64(credentialsRecheck) && a.checked.CompareAndSwap(last, now) {
		a.recheck()
	}
	st := a.state.Load()
	return st.current, st.err
}

// recheck reloads the files if their stamps changed.
func (a *authFiles) recheck() {
	st := [2]fileStamp{stampOf(a.webConfig), stampOf(a.hashFile)}
	a.mu.Lock()
	defer a.mu.Unlock()
	if st == a.stamp {
		return
	}
	a.stamp = st
	if err := a.load(); err != nil {
		a.logger.Error("reloading credentials failed; guarded paths answer 500 until fixed", "err", err)
	} else {
		a.logger.Info("credentials reloaded", "auth_enabled", a.state.Load().current.Enabled())
	}
}

// load reads both files and publishes the result; the caller holds mu or
// owns a.
func (a *authFiles) load() error {
	var creds gateway.Credentials
	var err error
	if a.webConfig != "" {
		creds.Users, err = deriveWebConfig(a.webConfig, a.derived)
		if err != nil {
			err = fmt.Errorf("--web.config.file %s: %w", a.webConfig, err)
		}
	}
	if err == nil && a.hashFile != "" {
		creds.PasswordHashes, err = gateway.LoadPasswordHashFile(a.hashFile)
	}
	var auth *gateway.Authenticator
	if err == nil {
		auth, err = gateway.NewAuthenticator(creds)
	}
	if err != nil {
		a.state.Store(&authState{err: err})
		return err
	}
	a.state.Store(&authState{current: auth})
	return nil
}

// deriveWebConfig reads the web configuration at src and writes it to dst
// without basic_auth_users, with relative tls_server_config file paths made
// absolute (exporter-toolkit resolves them against the file's directory).
// It returns basic_auth_users.
func deriveWebConfig(src, dst string) (map[string]string, error) {
	content, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	var users struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(content, &users); err != nil {
		return nil, err
	}
	var doc yaml.MapSlice
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return nil, err
	}
	dir := filepath.Dir(src)
	out := yaml.MapSlice{}
	for _, item := range doc {
		key, _ := item.Key.(string)
		switch key {
		case "basic_auth_users":
			continue
		case "tls_server_config":
			if item.Value == nil {
				break
			}
			tls, ok := item.Value.(yaml.MapSlice)
			if !ok {
				return nil, errors.New("tls_server_config is not a mapping")
			}
			for i := range tls {
				switch k, _ := tls[i].Key.(string); k {
				case "cert_file", "key_file", "client_ca_file":
					if p, ok := tls[i].Value.(string); ok && p != "" && !filepath.IsAbs(p) {
						tls[i].Value = filepath.Join(dir, p)
					}
				}
			}
			item.Value = tls
		}
		out = append(out, item)
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return nil, err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, err
	}
	return users.Users, nil
}
