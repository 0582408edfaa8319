package lambdaemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Paths and headers of the Extensions API (runtimes-extensions-api) and the
// Telemetry API (telemetry-api-reference).
const (
	pathRegister  = "/2020-01-01/extension/register"
	pathNext      = "/2020-01-01/extension/event/next"
	pathInitError = "/2020-01-01/extension/init/error"
	pathExitError = "/2020-01-01/extension/exit/error"
	pathTelemetry = "/2022-07-01/telemetry"

	headerName          = "Lambda-Extension-Name"
	headerIdentifier    = "Lambda-Extension-Identifier"
	headerEventID       = "Lambda-Extension-Event-Identifier"
	headerErrorType     = "Lambda-Extension-Function-Error-Type"
	headerAcceptFeature = "Lambda-Extension-Accept-Feature"

	// accountID is the made-up account of every ARN the emulator hands out.
	accountID = "123456789012"

	maxRequestBody = 1 << 20
)

// Error types. The Extensions API ones are those of the AWS Lambda Runtime
// Interface Emulator (lambda/rapi/handler and rapi/model), which shares its
// request handling with Lambda; ValidationError and SubscriptionClosed are this
// emulator's names, the docs only give the status codes.
const (
	errTypeInvalidName        = "Extension.InvalidExtensionName"
	errTypeRegistrationClosed = "Extension.RegistrationClosed"
	errTypeInvalidState       = "Extension.InvalidExtensionState"
	errTypeInvalidEvent       = "Extension.InvalidEventType"
	errTypeMissingHeader      = "Extension.MissingHeader"
	errTypeMissingIdentifier  = "Extension.MissingExtensionIdentifier"
	errTypeInvalidIdentifier  = "Extension.InvalidExtensionIdentifier"
	errTypeUnknownIdentifier  = "Extension.UnknownExtensionIdentifier"
	errTypeInvalidRequest     = "InvalidRequestFormat"
	errTypeTelemetryOff       = "Telemetry.NotSupported"
	errTypeSubscriptionClosed = "Telemetry.SubscriptionClosed"
	errTypeValidation         = "ValidationError"
)

// waiter is an /event/next request parked until Run hands it an event.
type waiter struct {
	reply chan []byte // buffered 1, so handing out never blocks
}

// api serves the Extensions API and the Telemetry API subscription for one
// external extension.
type api struct {
	extensionName         string // the executable's basename
	function              Function
	telemetryNotSupported bool
	logger                *slog.Logger
	// managedInstances refuses INVOKE at register and requires schema
	// 2025-01-29, as Lambda Managed Instances do (Config.ManagedInstances).
	managedInstances bool

	// waiting carries parked /event/next requests to Run. It is unbuffered: a
	// request is only taken when Run is ready to hand it an event.
	waiting chan waiter
	// reported is signalled (never blocking) on /init/error and /exit/error.
	reported chan struct{}
	// closed releases parked handlers when the emulator stops.
	closed    chan struct{}
	closeOnce sync.Once

	mu              sync.Mutex
	id              string   // Lambda-Extension-Identifier, "" until registered
	events          []string // registered event types
	initOver        bool     // registration and subscription are closed
	subscription    json.RawMessage
	subscribeStatus int
	destination     *url.URL
	initErrors      []string
	exitErrors      []string
	refused         int // registrations refused for INVOKE (managedInstances)
}

func newAPI(extensionName string, fn Function, telemetryNotSupported bool, logger *slog.Logger) *api {
	return &api{
		extensionName:         extensionName,
		function:              fn,
		telemetryNotSupported: telemetryNotSupported,
		logger:                logger,
		waiting:               make(chan waiter),
		reported:              make(chan struct{}, 1),
		closed:                make(chan struct{}),
	}
}

func (a *api) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathRegister, a.register)
	mux.HandleFunc("GET "+pathNext, a.next)
	mux.HandleFunc("POST "+pathInitError, a.reportError)
	mux.HandleFunc("POST "+pathExitError, a.reportError)
	mux.HandleFunc("PUT "+pathTelemetry, a.subscribe)
	// The reference page writes the endpoint with a trailing slash.
	mux.HandleFunc("PUT "+pathTelemetry+"/{$}", a.subscribe)
	return mux
}

// close releases every parked /event/next request; idempotent.
func (a *api) close() { a.closeOnce.Do(func() { close(a.closed) }) }

// endInit closes registration and subscription, as Lambda does once the init
// phase is over.
func (a *api) endInit() {
	a.mu.Lock()
	a.initOver = true
	a.mu.Unlock()
}

func (a *api) register(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get(headerName)
	if name == "" {
		writeError(w, http.StatusForbidden, errTypeInvalidName, "Empty extension name")
		return
	}
	if name != a.extensionName {
		// Lambda matches the name against the files in /opt/extensions.
		writeError(w, http.StatusForbidden, errTypeInvalidName,
			fmt.Sprintf("extension name %q is not the executable's file name %q", name, a.extensionName))
		return
	}
	var req struct {
		Events []string `json:"events"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody)).Decode(&req); err != nil {
		writeError(w, http.StatusForbidden, errTypeInvalidRequest, err.Error())
		return
	}
	for _, e := range req.Events {
		if e != "INVOKE" && e != "SHUTDOWN" {
			writeError(w, http.StatusForbidden, errTypeInvalidEvent, fmt.Sprintf("%s: not INVOKE or SHUTDOWN", e))
			return
		}
		if e == "INVOKE" && a.managedInstances {
			// The extension stays unregistered and may register again.
			a.mu.Lock()
			a.refused++
			a.mu.Unlock()
			a.logger.Info("registration refused: INVOKE on Lambda Managed Instances", "name", name)
			writeError(w, http.StatusForbidden, errTypeInvalidEvent, "INVOKE: external extensions on Lambda Managed Instances may register for SHUTDOWN only")
			return
		}
	}

	a.mu.Lock()
	switch {
	case a.initOver:
		a.mu.Unlock()
		writeError(w, http.StatusForbidden, errTypeRegistrationClosed, "Extension registration closed already")
		return
	case a.id != "":
		a.mu.Unlock()
		writeError(w, http.StatusForbidden, errTypeInvalidState, "Extension with this name already registered")
		return
	}
	a.id = newUUID()
	a.events = req.Events
	id := a.id
	a.mu.Unlock()
	a.logger.Info("extension registered", "name", name, "events", req.Events)

	resp := map[string]string{
		"functionName":    a.function.Name,
		"functionVersion": a.function.Version,
		"handler":         a.function.Handler,
	}
	if slices.Contains(strings.Split(r.Header.Get(headerAcceptFeature), ","), "accountId") {
		resp["accountId"] = accountID
	}
	w.Header().Set(headerIdentifier, id)
	writeJSON(w, http.StatusOK, resp)
}

// authenticate checks Lambda-Extension-Identifier and answers 403 when it is
// missing, malformed or unknown.
func (a *api) authenticate(w http.ResponseWriter, r *http.Request) bool {
	id := r.Header.Get(headerIdentifier)
	switch {
	case id == "":
		writeError(w, http.StatusForbidden, errTypeMissingIdentifier, "Missing Lambda-Extension-Identifier header")
		return false
	case !isUUID(id):
		writeError(w, http.StatusForbidden, errTypeInvalidIdentifier, "Invalid Lambda-Extension-Identifier")
		return false
	}
	a.mu.Lock()
	known := a.id != "" && id == a.id
	a.mu.Unlock()
	if !known {
		writeError(w, http.StatusForbidden, errTypeUnknownIdentifier, "Unknown extension "+id)
		return false
	}
	return true
}

// next parks the request until Run hands it an event. There is no server-side
// timeout: Lambda answers only when there is an event, and after SHUTDOWN it
// never answers (the process is expected to exit), so neither does this.
func (a *api) next(w http.ResponseWriter, r *http.Request) {
	if !a.authenticate(w, r) {
		return
	}
	wt := waiter{reply: make(chan []byte, 1)}
	select {
	case a.waiting <- wt:
	case <-r.Context().Done():
		return
	case <-a.closed:
		return
	}
	select {
	case ev := <-wt.reply:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(headerEventID, newUUID())
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(ev)
	case <-r.Context().Done():
		select {
		case <-a.closed: // the emulator closed the connection itself
		default:
			a.logger.Warn("extension hung up /event/next after an event was handed to it")
		}
	case <-a.closed:
	}
}

// reportError serves /init/error and /exit/error: 202 and the error type is
// recorded. The extension is expected to exit afterwards.
func (a *api) reportError(w http.ResponseWriter, r *http.Request) {
	if !a.authenticate(w, r) {
		return
	}
	errType := r.Header.Get(headerErrorType)
	if errType == "" {
		writeError(w, http.StatusForbidden, errTypeMissingHeader, "Missing "+headerErrorType+" header")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	initPhase := r.URL.Path == pathInitError
	a.mu.Lock()
	if initPhase {
		a.initErrors = append(a.initErrors, errType)
	} else {
		a.exitErrors = append(a.exitErrors, errType)
	}
	a.mu.Unlock()
	a.logger.Warn("extension reported an error", "path", r.URL.Path, "errorType", errType, "body", string(body))
	select {
	case a.reported <- struct{}{}:
	default:
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
}

// subscribe serves PUT /2022-07-01/telemetry.
func (a *api) subscribe(w http.ResponseWriter, r *http.Request) {
	if !a.authenticate(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, errTypeValidation, "read body: "+err.Error())
		return
	}
	a.mu.Lock()
	initOver := a.initOver
	a.mu.Unlock()
	if initOver {
		writeError(w, http.StatusForbidden, errTypeSubscriptionClosed, "Telemetry API subscription is closed already")
		return
	}
	if a.telemetryNotSupported {
		// What the Runtime Interface Emulator answers; extensions must go on
		// without telemetry.
		a.recordSubscription(body, http.StatusAccepted, nil)
		writeError(w, http.StatusAccepted, errTypeTelemetryOff, "Telemetry API is not supported")
		return
	}
	dest, err := validateSubscription(body)
	if err == nil && a.managedInstances {
		err = requireManagedSchema(body)
	}
	if err != nil {
		a.logger.Warn("telemetry subscription rejected", "err", err)
		writeError(w, http.StatusBadRequest, errTypeValidation, err.Error())
		return
	}
	a.recordSubscription(body, http.StatusOK, dest)
	a.logger.Info("telemetry subscription accepted", "destination", dest.String())
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "OK")
}

func (a *api) recordSubscription(body []byte, status int, dest *url.URL) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.subscription = json.RawMessage(body)
	a.subscribeStatus = status
	a.destination = dest
}

// subscribeRequest is the Subscribe body (telemetry-api-reference). Pointers
// tell absent fields from zero ones.
type subscribeRequest struct {
	SchemaVersion string   `json:"schemaVersion"`
	Types         []string `json:"types"`
	Buffering     *struct {
		MaxItems  *int64 `json:"maxItems"`
		MaxBytes  *int64 `json:"maxBytes"`
		TimeoutMs *int64 `json:"timeoutMs"`
	} `json:"buffering"`
	Destination *struct {
		Protocol string `json:"protocol"`
		URI      string `json:"URI"`
	} `json:"destination"`
}

// validateSubscription checks a Subscribe body against the ranges of the
// Telemetry API reference and returns the destination to POST batches to.
//
// Deliberately narrower than Lambda: schema 2022-07-01 is refused because
// scenario events have the 2022-12-13 shapes, TCP destinations are refused
// because only HTTP delivery is emulated, and the host must be
// sandbox.localdomain, localhost or a loopback address so the emulator never
// POSTs off the machine.
func validateSubscription(body []byte) (*url.URL, error) {
	var req subscribeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("malformed subscription: %w", err)
	}
	switch req.SchemaVersion {
	case "2022-12-13", "2025-01-29":
	default:
		return nil, fmt.Errorf("schemaVersion %q: want 2022-12-13 or 2025-01-29", req.SchemaVersion)
	}
	if len(req.Types) == 0 {
		return nil, errors.New("types: empty")
	}
	for _, t := range req.Types {
		if t != "platform" && t != "function" && t != "extension" {
			return nil, fmt.Errorf("types: %q is not platform, function or extension", t)
		}
	}
	if b := req.Buffering; b != nil {
		for _, f := range []struct {
			name     string
			v        *int64
			min, max int64
		}{
			{"maxItems", b.MaxItems, 1000, 10000},
			{"maxBytes", b.MaxBytes, 262144, 1048576},
			{"timeoutMs", b.TimeoutMs, 25, 30000},
		} {
			if f.v != nil && (*f.v < f.min || *f.v > f.max) {
				return nil, fmt.Errorf("buffering.%s %d: want %d..%d", f.name, *f.v, f.min, f.max)
			}
		}
	}
	d := req.Destination
	if d == nil {
		return nil, errors.New("destination: missing")
	}
	if d.Protocol != "HTTP" {
		return nil, fmt.Errorf("destination.protocol %q: only HTTP is emulated", d.Protocol)
	}
	u, err := url.Parse(d.URI)
	if err != nil {
		return nil, fmt.Errorf("destination.URI: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("destination.URI %q: want http://host:port[/path]", d.URI)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if !strings.EqualFold(host, sandboxHost) && !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("destination.URI %q: host must be %s (or a loopback address)", d.URI, sandboxHost)
	}
	port := 80
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("destination.URI %q: bad port", d.URI)
		}
	}
	if port == 9001 {
		return nil, fmt.Errorf("destination.URI %q: port 9001 is reserved for the Lambda runtime API", d.URI)
	}
	return u, nil
}

// writeError writes the AWS error body {"errorMessage","errorType"}.
func writeError(w http.ResponseWriter, status int, errType, msg string) {
	writeJSON(w, status, map[string]string{"errorMessage": msg, "errorType": errType})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// newUUID returns a random (version 4) UUID, the form Lambda uses for
// extension identifiers.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// traceHeader returns an X-Ray trace header of the form Lambda puts into
// INVOKE events: Root=1-<unix seconds, 8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0.
func traceHeader(now time.Time) string {
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", now.Unix(), randomHex(12), randomHex(8))
}

// requireManagedSchema checks that a subscription uses schema 2025-01-29,
// which Lambda Managed Instances require.
func requireManagedSchema(body []byte) error {
	var req subscribeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("malformed subscription: %w", err)
	}
	if req.SchemaVersion != schemaManagedInstances {
		return fmt.Errorf("schemaVersion %q: Lambda Managed Instances require %s", req.SchemaVersion, schemaManagedInstances)
	}
	return nil
}

const schemaManagedInstances = "2025-01-29"
