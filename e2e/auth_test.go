package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/prometheus-lambda/prometheus-lambda/internal/lambdaemu"
	"github.com/prometheus-lambda/prometheus-lambda/internal/secretsmanagertest"
)

// TestScenarioWithAuthSecret runs the scenario with AUTH_SECRET set: the
// extension reads the credentials with the real AWS SDK from a local Secrets
// Manager endpoint, and the gateway (exporter-toolkit web config, bcrypt)
// accepts its pushes while rejecting pushes without those credentials.
func TestScenarioWithAuthSecret(t *testing.T) {
	const user, password = "lambda", "correct horse battery staple"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(webConfig, []byte(fmt.Sprintf("basic_auth_users:\n  %s: %s\n", user, hash)), 0o600); err != nil {
		t.Fatal(err)
	}
	sm := secretsmanagertest.NewServer(map[string]string{
		"prometheus-gateway-auth": fmt.Sprintf(`{"username":%q,"password":%q}`, user, password),
	})
	defer sm.Close()

	p := startPipeline(t, "--web.config.file="+webConfig)
	p.run(t, lambdaemu.Config{Redeliver: []int{1}},
		"AUTH_SECRET="+secretsmanagertest.ARN("prometheus-gateway-auth"),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+sm.URL(),
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		"AWS_SESSION_TOKEN=session-token",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	)
	if got := sm.Requests(); got != 1 {
		t.Errorf("the secret was read %d times, want once", got)
	}
	if strings.Contains(p.logs.String(), password) {
		t.Errorf("the password appeared in the logs")
	}

	families, _ := p.scrape(t, user, password)
	checkScenario(t, families, p.scenario)

	// Pushes without the credentials, or with wrong ones, are refused with
	// 401 (the peer gateway answered a non-standard 403) and change nothing.
	body := "# TYPE aws_lambda_invocations_total counter\naws_lambda_invocations_total{status=\"success\"} 100\n"
	for name, setAuth := range map[string]func(*http.Request){
		"no credentials": func(*http.Request) {},
		"wrong password": func(r *http.Request) { r.SetBasicAuth(user, "guess") },
		"unknown user":   func(r *http.Request) { r.SetBasicAuth("intruder", password) },
		"password as-is": func(r *http.Request) { r.Header.Set("Authorization", "Basic "+password) },
	} {
		req, _ := http.NewRequest(http.MethodPost, p.gateway.URL+"/metrics/job/orders-api", strings.NewReader(body))
		setAuth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("push with %s: status %d, want 401", name, resp.StatusCode)
		}
	}
	after, _ := p.scrape(t, user, password)
	checkScenario(t, after, p.scenario)
}
