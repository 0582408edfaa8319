package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus-lambda/prometheus-lambda/extension"
)

// registerServer answers /register like Lambda Managed Instances when
// refuseInvoke is set, and records the event lists it was sent.
func registerServer(t *testing.T, refuseInvoke bool) (*httptest.Server, func() [][]string) {
	var mu sync.Mutex
	var calls [][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Events []string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		calls = append(calls, req.Events)
		mu.Unlock()
		if refuseInvoke && strings.Contains(strings.Join(req.Events, ","), "INVOKE") {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"errorType":"Extension.InvalidEventType","errorMessage":"INVOKE is not supported"}`)
			return
		}
		w.Header().Set("Lambda-Extension-Identifier", "6b6b1c1a-1111-4c4c-8d8d-123456789abc")
		_, _ = io.WriteString(w, `{"functionName":"f","functionVersion":"$LATEST"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() [][]string { mu.Lock(); defer mu.Unlock(); return calls }
}

func TestRegisterManagedInstances(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name         string
		refuseInvoke bool
		initType     string
		wantManaged  bool
		wantCalls    string
	}{
		{"on-demand", false, "on-demand", false, "INVOKE,SHUTDOWN"},
		{"refused INVOKE", true, "", true, "INVOKE,SHUTDOWN|SHUTDOWN"},
		{"initialization type", true, "lambda-managed-instances", true, "SHUTDOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := registerServer(t, tc.refuseInvoke)
			client := extension.NewClient(strings.TrimPrefix(srv.URL, "http://"), nil)
			reg, managed, err := register(context.Background(), client, "ext", env(map[string]string{"AWS_LAMBDA_INITIALIZATION_TYPE": tc.initType}), logger)
			if err != nil {
				t.Fatal(err)
			}
			if managed != tc.wantManaged || reg.FunctionName != "f" || client.ExtensionID() == "" {
				t.Errorf("managed = %v (want %v), reg = %+v, id %q", managed, tc.wantManaged, reg, client.ExtensionID())
			}
			var got []string
			for _, c := range calls() {
				got = append(got, strings.Join(c, ","))
			}
			if strings.Join(got, "|") != tc.wantCalls {
				t.Errorf("registrations %q, want %q", strings.Join(got, "|"), tc.wantCalls)
			}
		})
	}
}

func TestRegisterOtherFailureIsNotRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	client := extension.NewClient(strings.TrimPrefix(srv.URL, "http://"), nil)
	if _, managed, err := register(context.Background(), client, "ext", env(nil), slog.New(slog.DiscardHandler)); err == nil || managed {
		t.Fatalf("register = managed %v, err %v; want a plain failure", managed, err)
	}
}

func TestLoadConfigDispatchInterval(t *testing.T) {
	c, err := loadConfig(env(map[string]string{"GATEWAY": "http://gw:9091", "DISPATCH_INTERVAL": "250ms"}))
	if err != nil || c.DispatchInterval.Milliseconds() != 250 {
		t.Fatalf("config %+v, err %v", c, err)
	}
	if _, err := loadConfig(env(map[string]string{"GATEWAY": "http://gw:9091", "DISPATCH_INTERVAL": "0"})); err == nil {
		t.Fatal("DISPATCH_INTERVAL=0 accepted")
	}
}
