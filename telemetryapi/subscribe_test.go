package telemetryapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

const testExtensionID = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"

// subscribeServer answers every request with status and body and hands the
// request it saw to check.
func subscribeServer(t *testing.T, status int, body string, check func(r *http.Request, body []byte)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if check != nil {
			check(r, b)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestSubscribeOK(t *testing.T) {
	var seen bool
	api := subscribeServer(t, http.StatusOK, `"OK"`, func(r *http.Request, body []byte) {
		seen = true
		if r.Method != http.MethodPut || r.URL.Path != "/2022-07-01/telemetry" {
			t.Errorf("request = %s %s, want PUT /2022-07-01/telemetry", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Lambda-Extension-Identifier"); got != testExtensionID {
			t.Errorf("Lambda-Extension-Identifier = %q", got)
		}
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type = %q", got)
		}
		var got any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		var want any
		_ = json.Unmarshal([]byte(`{
			"schemaVersion": "2022-12-13",
			"types": ["platform", "function"],
			"buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
			"destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/"}
		}`), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("body = %s\nwant %v", body, want)
		}
	})
	s := NewSubscription("http://sandbox.localdomain:4243/", TypesPlatform, TypesFunction)
	if err := Subscribe(context.Background(), nil, api, testExtensionID, s); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if !seen {
		t.Fatal("no request reached the server")
	}
}

func TestSubscribeNotSupported(t *testing.T) {
	api := subscribeServer(t, http.StatusAccepted,
		`{"errorMessage":"Telemetry API is not supported","errorType":"Telemetry.NotSupported"}`, nil)
	err := Subscribe(context.Background(), nil, api, testExtensionID, NewSubscription("http://localhost:1/", TypesPlatform))
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("err = %v, want ErrNotSupported", err)
	}
	if !strings.Contains(err.Error(), "Telemetry API is not supported") || !strings.Contains(err.Error(), "Telemetry.NotSupported") {
		t.Errorf("error %q lacks the answer's message", err)
	}
}

func TestSubscribeNotSupportedEmptyBody(t *testing.T) {
	api := subscribeServer(t, http.StatusAccepted, "", nil)
	err := Subscribe(context.Background(), nil, api, testExtensionID, NewSubscription("http://localhost:1/", TypesPlatform))
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("err = %v, want ErrNotSupported", err)
	}
}

func TestSubscribeRejected(t *testing.T) {
	for _, tc := range []struct {
		status          int
		body            string
		errorType, text string
	}{
		{400, `{"errorMessage":"buffering.timeoutMs must be between 25 and 30000","errorType":"ValidationError"}`,
			"ValidationError", "buffering.timeoutMs must be between 25 and 30000"},
		{500, "internal failure\n", "", "internal failure"},
	} {
		api := subscribeServer(t, tc.status, tc.body, nil)
		err := Subscribe(context.Background(), nil, api, testExtensionID, NewSubscription("http://localhost:1/", TypesPlatform))
		var se *SubscribeError
		if !errors.As(err, &se) {
			t.Fatalf("%d: err = %v (%T), want *SubscribeError", tc.status, err, err)
		}
		if errors.Is(err, ErrNotSupported) {
			t.Errorf("%d: error matches ErrNotSupported", tc.status)
		}
		if se.StatusCode != tc.status || se.ErrorType != tc.errorType || se.Message != tc.text {
			t.Errorf("%d: SubscribeError = %+v", tc.status, *se)
		}
		if !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%d: error %q lacks %q", tc.status, err, tc.text)
		}
	}
}

func TestSubscribeUnreachable(t *testing.T) {
	api := subscribeServer(t, 200, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Subscribe(ctx, nil, api, testExtensionID, NewSubscription("http://localhost:1/"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
