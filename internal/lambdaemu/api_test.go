package lambdaemu

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// apiServer serves a fresh api for extension "ext" on 127.0.0.1.
func apiServer(t *testing.T, notSupported bool) (*api, *httptest.Server) {
	t.Helper()
	fn := (&Scenario{Function: Function{Name: "fn"}}).function()
	a := newAPI("ext", fn, notSupported, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(a.handler())
	t.Cleanup(func() { a.close(); srv.Close() })
	return a, srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func registerExt(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	status, hdr, body := do(t, srv, "POST", pathRegister, `{"events":["INVOKE","SHUTDOWN"]}`, map[string]string{headerName: "ext"})
	if status != 200 {
		t.Fatalf("register: %d %s", status, body)
	}
	id := hdr.Get(headerIdentifier)
	if !isUUID(id) {
		t.Fatalf("identifier %q is not a UUID", id)
	}
	return id
}

func TestRegister(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, extName, body, wantType string
	}{
		{"empty name", "", `{"events":["INVOKE"]}`, errTypeInvalidName},
		{"not the file name", "other", `{"events":["INVOKE"]}`, errTypeInvalidName},
		{"bad event", "ext", `{"events":["INVOKE","RESTORE"]}`, errTypeInvalidEvent},
		{"bad body", "ext", `{"events":`, errTypeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := apiServer(t, false)
			status, hdr, body := do(t, srv, "POST", pathRegister, tc.body, map[string]string{headerName: tc.extName})
			if status != 403 || errorType(t, body) != tc.wantType || hdr.Get(headerIdentifier) != "" {
				t.Errorf("got %d %s, want 403 %s", status, body, tc.wantType)
			}
		})
	}

	t.Run("ok, then not twice", func(t *testing.T) {
		_, srv := apiServer(t, false)
		status, hdr, body := do(t, srv, "POST", pathRegister, `{"events":["SHUTDOWN"]}`,
			map[string]string{headerName: "ext", headerAcceptFeature: "accountId"})
		var got map[string]string
		if err := json.Unmarshal([]byte(body), &got); err != nil || status != 200 {
			t.Fatalf("register: %d %s", status, body)
		}
		if !isUUID(hdr.Get(headerIdentifier)) || got["functionName"] != "fn" || got["functionVersion"] != "$LATEST" ||
			got["handler"] != "bootstrap" || got["accountId"] != accountID {
			t.Errorf("register answer %v %s", hdr, body)
		}
		status, _, body = do(t, srv, "POST", pathRegister, `{"events":["SHUTDOWN"]}`, map[string]string{headerName: "ext"})
		if status != 403 || errorType(t, body) != errTypeInvalidState {
			t.Errorf("second register: %d %s", status, body)
		}
	})

	t.Run("closed after init", func(t *testing.T) {
		a, srv := apiServer(t, false)
		a.endInit()
		status, _, body := do(t, srv, "POST", pathRegister, `{"events":[]}`, map[string]string{headerName: "ext"})
		if status != 403 || errorType(t, body) != errTypeRegistrationClosed {
			t.Errorf("got %d %s", status, body)
		}
	})
}

func TestIdentifierChecked(t *testing.T) {
	t.Parallel()
	_, srv := apiServer(t, false)
	id := registerExt(t, srv)
	other := newUUID()
	for _, call := range []struct{ method, path string }{
		{"GET", pathNext},
		{"POST", pathInitError},
		{"POST", pathExitError},
		{"PUT", pathTelemetry},
	} {
		for _, tc := range []struct{ id, wantType string }{
			{"", errTypeMissingIdentifier},
			{"not-a-uuid", errTypeInvalidIdentifier},
			{other, errTypeUnknownIdentifier},
			{strings.ToUpper(id[:8]) + "x" + id[9:], errTypeInvalidIdentifier},
		} {
			h := map[string]string{headerErrorType: "Extension.X"}
			if tc.id != "" {
				h[headerIdentifier] = tc.id
			}
			status, _, body := do(t, srv, call.method, call.path, `{}`, h)
			if status != 403 || errorType(t, body) != tc.wantType {
				t.Errorf("%s %s with id %q: %d %s, want 403 %s", call.method, call.path, tc.id, status, body, tc.wantType)
			}
		}
	}
}

func TestNextHandsOutEvent(t *testing.T) {
	t.Parallel()
	a, srv := apiServer(t, false)
	id := registerExt(t, srv)
	type answer struct {
		status int
		hdr    http.Header
		body   string
	}
	got := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+pathNext, nil)
		req.Header.Set(headerIdentifier, id)
		resp, err := srv.Client().Do(req)
		if err != nil {
			got <- answer{}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- answer{resp.StatusCode, resp.Header, string(b)}
	}()
	var w waiter
	select {
	case w = <-a.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("/event/next never parked")
	}
	select {
	case ans := <-got:
		t.Fatalf("/event/next answered before an event was handed out: %+v", ans)
	default:
	}
	w.reply <- []byte(`{"eventType":"INVOKE"}`)
	ans := <-got
	if ans.status != 200 || ans.body != `{"eventType":"INVOKE"}` || !isUUID(ans.hdr.Get(headerEventID)) {
		t.Errorf("got %+v", ans)
	}
}

func TestReportErrors(t *testing.T) {
	t.Parallel()
	a, srv := apiServer(t, false)
	id := registerExt(t, srv)
	status, _, body := do(t, srv, "POST", pathExitError, `{}`, map[string]string{headerIdentifier: id})
	if status != 403 || errorType(t, body) != errTypeMissingHeader {
		t.Errorf("without error type: %d %s", status, body)
	}
	h := map[string]string{headerIdentifier: id, headerErrorType: "Extension.Boom"}
	if status, _, body := do(t, srv, "POST", pathInitError, `{}`, h); status != 202 {
		t.Errorf("/init/error: %d %s", status, body)
	}
	if status, _, body := do(t, srv, "POST", pathExitError, `{}`, h); status != 202 {
		t.Errorf("/exit/error: %d %s", status, body)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.initErrors) != 1 || len(a.exitErrors) != 1 || a.initErrors[0] != "Extension.Boom" {
		t.Errorf("recorded %v %v", a.initErrors, a.exitErrors)
	}
	select {
	case <-a.reported:
	default:
		t.Error("Run was not told about the reported error")
	}
}

func TestSubscriptionValidation(t *testing.T) {
	t.Parallel()
	const dest = `"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243/t"}`
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"minimal", `{"schemaVersion":"2022-12-13","types":["platform"],` + dest + `}`, 200},
		{"2025-01-29 all types", `{"schemaVersion":"2025-01-29","types":["platform","function","extension"],` + dest + `}`, 200},
		{"buffering at the bounds", `{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"maxItems":10000,"maxBytes":262144,"timeoutMs":25},` + dest + `}`, 200},
		{"buffering partly given", `{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"timeoutMs":30000},` + dest + `}`, 200},
		{"loopback listener", `{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://127.0.0.1:4243"}}`, 200},
		{"bad schema", `{"schemaVersion":"2021-01-01","types":["platform"],` + dest + `}`, 400},
		{"old schema", `{"schemaVersion":"2022-07-01","types":["platform"],` + dest + `}`, 400},
		{"no schema", `{"types":["platform"],` + dest + `}`, 400},
		{"no types", `{"schemaVersion":"2022-12-13","types":[],` + dest + `}`, 400},
		{"bad type", `{"schemaVersion":"2022-12-13","types":["platform","logs"],` + dest + `}`, 400},
		{"maxItems low", `{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"maxItems":999},` + dest + `}`, 400},
		{"maxBytes high", `{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"maxBytes":1048577},` + dest + `}`, 400},
		{"timeoutMs low", `{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"timeoutMs":24},` + dest + `}`, 400},
		{"timeoutMs not integer", `{"schemaVersion":"2022-12-13","types":["platform"],"buffering":{"timeoutMs":25.5},` + dest + `}`, 400},
		{"no destination", `{"schemaVersion":"2022-12-13","types":["platform"]}`, 400},
		{"TCP", `{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"TCP","URI":"http://sandbox.localdomain:4243"}}`, 400},
		{"port 9001", `{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:9001/"}}`, 400},
		{"https", `{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"https://sandbox.localdomain:4243"}}`, 400},
		{"remote host", `{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://example.com:4243"}}`, 400},
		{"not json", `{"schemaVersion":`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, srv := apiServer(t, false)
			id := registerExt(t, srv)
			status, _, body := do(t, srv, "PUT", pathTelemetry, tc.body, map[string]string{headerIdentifier: id})
			if status != tc.want {
				t.Fatalf("got %d %s, want %d", status, body, tc.want)
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if tc.want == 400 {
				if errorType(t, body) != errTypeValidation || a.destination != nil {
					t.Errorf("rejected with %s, destination %v", body, a.destination)
				}
				return
			}
			if a.destination == nil || string(a.subscription) != tc.body || a.subscribeStatus != 200 {
				t.Errorf("accepted, but recorded %v %s", a.destination, a.subscription)
			}
		})
	}
}

func TestSubscriptionPathsAndStates(t *testing.T) {
	t.Parallel()
	const good = `{"schemaVersion":"2022-12-13","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:4243"}}`

	t.Run("trailing slash", func(t *testing.T) {
		_, srv := apiServer(t, false)
		id := registerExt(t, srv)
		if status, _, body := do(t, srv, "PUT", pathTelemetry+"/", good, map[string]string{headerIdentifier: id}); status != 200 {
			t.Errorf("got %d %s", status, body)
		}
	})
	t.Run("not supported", func(t *testing.T) {
		a, srv := apiServer(t, true)
		id := registerExt(t, srv)
		status, _, body := do(t, srv, "PUT", pathTelemetry, good, map[string]string{headerIdentifier: id})
		if status != 202 || errorType(t, body) != errTypeTelemetryOff || a.destination != nil {
			t.Errorf("got %d %s", status, body)
		}
	})
	t.Run("closed after init", func(t *testing.T) {
		a, srv := apiServer(t, false)
		id := registerExt(t, srv)
		a.endInit()
		status, _, body := do(t, srv, "PUT", pathTelemetry, good, map[string]string{headerIdentifier: id})
		if status != 403 || errorType(t, body) != errTypeSubscriptionClosed {
			t.Errorf("got %d %s", status, body)
		}
	})
}

func TestDeliverer(t *testing.T) {
	t.Parallel()
	var calls, failFirst atomic.Int32
	var host atomic.Value
	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		b, _ := io.ReadAll(r.Body)
		if string(b) != `[{"type":"x"}]` || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if calls.Add(1) <= failFirst.Load() {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	defer listener.Close()
	port := listener.URL[strings.LastIndex(listener.URL, ":")+1:]
	d := newDeliverer(slog.New(slog.DiscardHandler))
	d.backoff = time.Millisecond
	defer d.close()
	body := []byte(`[{"type":"x"}]`)

	// sandbox.localdomain reaches 127.0.0.1, the Host header keeps the name.
	failFirst.Store(2)
	failures, err := d.post(context.Background(), "http://sandbox.localdomain:"+port+"/t", body, nil)
	if err != nil || failures != 2 || calls.Load() != 3 {
		t.Errorf("post = %d failures, %v after %d calls; want success on the third", failures, err, calls.Load())
	}
	if h := host.Load(); h != "sandbox.localdomain:"+port {
		t.Errorf("Host %v", h)
	}

	// Gives up after d.attempts.
	calls.Store(0)
	failFirst.Store(100)
	failures, err = d.post(context.Background(), listener.URL, body, nil)
	if err == nil || failures != d.attempts || int(calls.Load()) != d.attempts {
		t.Errorf("post = %d failures, %v after %d calls; want an error after %d", failures, err, calls.Load(), d.attempts)
	}

	// A cancelled context stops the retries.
	calls.Store(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.post(ctx, listener.URL, body, nil); err == nil || calls.Load() != 0 {
		t.Errorf("post with a cancelled context: %v after %d calls", err, calls.Load())
	}

	// A closed stop ends the retries after the attempt under way.
	calls.Store(0)
	stop := make(chan struct{})
	close(stop)
	if failures, err := d.post(context.Background(), listener.URL, body, stop); err == nil || failures != 1 || calls.Load() != 1 {
		t.Errorf("post with stop closed: %d failures, %v after %d calls; want one attempt", failures, err, calls.Load())
	}
}
