package lambdaemu

import (
	"strings"
	"testing"
)

func TestManagedInstancesRegisterAndSubscribe(t *testing.T) {
	a, srv := apiServer(t, false)
	a.managedInstances = true

	status, _, body := do(t, srv, "POST", pathRegister, `{"events":["INVOKE","SHUTDOWN"]}`, map[string]string{headerName: "ext"})
	if status != 403 || !strings.Contains(body, errTypeInvalidEvent) {
		t.Fatalf("register with INVOKE: %d %s, want 403 %s", status, body, errTypeInvalidEvent)
	}
	status, hdr, body := do(t, srv, "POST", pathRegister, `{"events":["SHUTDOWN"]}`, map[string]string{headerName: "ext"})
	if status != 200 {
		t.Fatalf("register for SHUTDOWN after a refusal: %d %s", status, body)
	}
	id := hdr.Get(headerIdentifier)
	if a.refused != 1 || len(a.events) != 1 || a.events[0] != "SHUTDOWN" {
		t.Fatalf("refused %d, events %v", a.refused, a.events)
	}

	sub := func(schema string) (int, string) {
		s, _, b := do(t, srv, "PUT", pathTelemetry,
			`{"schemaVersion":"`+schema+`","types":["platform"],"destination":{"protocol":"HTTP","URI":"http://127.0.0.1:4243"}}`,
			map[string]string{headerIdentifier: id})
		return s, b
	}
	if s, b := sub("2022-12-13"); s != 400 || !strings.Contains(b, "2025-01-29") {
		t.Fatalf("subscription with 2022-12-13: %d %s, want 400", s, b)
	}
	if s, b := sub("2025-01-29"); s != 200 {
		t.Fatalf("subscription with 2025-01-29: %d %s", s, b)
	}
}

func TestManagedInstancesOnDemandUnchanged(t *testing.T) {
	_, srv := apiServer(t, false)
	registerExt(t, srv) // INVOKE accepted
	if got := initializationType(Config{}); got != "on-demand" {
		t.Errorf("initialization type %q", got)
	}
	if got := initializationType(Config{ManagedInstances: true}); got != "lambda-managed-instances" {
		t.Errorf("initialization type %q", got)
	}
}

func TestManagedInstancesScenarioLoads(t *testing.T) {
	sc, err := LoadScenario("../../testdata/managed-instances.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Batches) != len(sc.Invocations) {
		t.Fatalf("%d batches for %d invocations: every batch is delivered before SHUTDOWN", len(sc.Batches), len(sc.Invocations))
	}
	for i, b := range sc.Batches {
		if s := string(b); strings.Contains(s, "platform.runtimeDone") || strings.Contains(s, "billedDurationMs") || strings.Contains(s, "maxMemoryUsedMB") {
			t.Errorf("batch %d has fields Managed Instances do not send", i)
		}
	}
}
