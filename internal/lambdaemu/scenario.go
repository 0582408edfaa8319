package lambdaemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Scenario is one execution environment's life as recorded in a scenario file
// (see testdata/cold-start-four-invocations.json at the module root).
type Scenario struct {
	Description string       `json:"description"`
	Function    Function     `json:"function"`
	Invocations []Invocation `json:"invocations"`
	// Batches are Telemetry API POST bodies, each a JSON array of
	// {"time","type","record"} events, kept byte for byte as in the file and
	// delivered verbatim. Batch k (k < len(Invocations)) is delivered during
	// invocation k, the rest during shutdown.
	Batches []json.RawMessage `json:"batches"`
}

// Function describes the emulated function.
type Function struct {
	Name         string `json:"name"`
	Version      string `json:"version"`      // default "$LATEST"
	MemorySizeMB int    `json:"memorySizeMB"` // default 128
	// Handler is echoed in the /register answer; default "bootstrap".
	Handler string `json:"handler,omitempty"`
}

// Invocation is one INVOKE handed to the extension.
type Invocation struct {
	RequestID string `json:"requestId"`
}

// LoadScenario reads and checks a scenario file: function.name and every
// requestId must be set, and every batch must be a JSON array.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lambdaemu: read scenario: %w", err)
	}
	var sc Scenario
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("lambdaemu: parse scenario %s: %w", path, err)
	}
	if err := sc.validate(); err != nil {
		return nil, fmt.Errorf("lambdaemu: scenario %s: %w", path, err)
	}
	return &sc, nil
}

func (sc *Scenario) validate() error {
	if sc.Function.Name == "" {
		return errors.New("function.name is empty")
	}
	for i, inv := range sc.Invocations {
		if inv.RequestID == "" {
			return fmt.Errorf("invocations[%d].requestId is empty", i)
		}
	}
	for i, b := range sc.Batches {
		if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '[' {
			return fmt.Errorf("batches[%d] is not a JSON array", i)
		}
	}
	return nil
}

// function returns the function with defaults filled in.
func (sc *Scenario) function() Function {
	f := sc.Function
	if f.Version == "" {
		f.Version = "$LATEST"
	}
	if f.MemorySizeMB == 0 {
		f.MemorySizeMB = 128
	}
	if f.Handler == "" {
		f.Handler = "bootstrap"
	}
	return f
}
