package lambdaemu

// The fake extension is this test binary re-executed: TestMain runs
// fakeExtensionMain instead of the tests when LAMBDAEMU_FAKEEXT=1. The tests
// start it through a symlink whose name is the extension's name, and steer it
// with FAKEEXT_* variables passed in Config.Env (the emulator passes nothing
// else of the test's environment on):
//
//	FAKEEXT_OUT           JSON-lines file it records what it saw into (required)
//	FAKEEXT_NAME          name to register with; default its file name
//	FAKEEXT_SUBSCRIBE=0   do not subscribe to the Telemetry API
//	FAKEEXT_SUBSCRIPTION  subscription body; {{PORT}} becomes the listener's port
//	FAKEEXT_FAIL_FIRST=1  the listener answers the first POST 500
//	FAKEEXT_WAIT_BATCHES  on SHUTDOWN, wait (≤ 1.5s) until this many batches arrived
//	FAKEEXT_MODE          misbehaviour: initerror (call /init/error, exit 1),
//	                      stall (register, never call /event/next), hang (ignore
//	                      SHUTDOWN: call /event/next again and block), exit1
//	                      (exit 1 on SHUTDOWN), exiterror (call /exit/error on
//	                      SHUTDOWN, exit 0)

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv("LAMBDAEMU_FAKEEXT") == "1" {
		os.Exit(fakeExtensionMain())
	}
	os.Exit(m.Run())
}

// record is one line of the fake extension's observation file.
type record struct {
	Kind       string          `json:"kind"` // env, register, subscribe, event, batch, batch-rejected, exit-error, after-shutdown
	Status     int             `json:"status,omitempty"`
	Body       string          `json:"body,omitempty"`
	Event      json.RawMessage `json:"event,omitempty"`
	ReceivedMs int64           `json:"receivedMs,omitempty"`
	Batches    int             `json:"batches"` // batches accepted by the listener so far
	Env        []string        `json:"env,omitempty"`
	Pid        int             `json:"pid,omitempty"`
	Host       string          `json:"host,omitempty"`
}

type recorder struct {
	mu      sync.Mutex
	f       *os.File
	batches int
}

func (r *recorder) write(rec record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec.Batches = r.batches
	b, _ := json.Marshal(rec)
	_, _ = r.f.Write(append(b, '\n'))
}

func (r *recorder) batchCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches
}

func fakeExtensionMain() int {
	f, err := os.OpenFile(os.Getenv("FAKEEXT_OUT"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeext:", err)
		return 2
	}
	rec := &recorder{f: f}
	rec.write(record{Kind: "env", Env: os.Environ(), Pid: os.Getpid()})

	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API")
	client := &http.Client{Transport: &http.Transport{Proxy: nil}} // no timeout: /event/next blocks
	call := func(method, path, body string, header map[string]string) (int, http.Header, string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakeext:", err)
			return 0, nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	name := os.Getenv("FAKEEXT_NAME")
	if name == "" {
		name = filepath.Base(os.Args[0])
	}
	status, hdr, body := call("POST", pathRegister, `{"events":["INVOKE","SHUTDOWN"]}`, map[string]string{headerName: name})
	rec.write(record{Kind: "register", Status: status, Body: body})
	if status != http.StatusOK {
		return 3
	}
	id := map[string]string{headerIdentifier: hdr.Get(headerIdentifier)}
	mode := os.Getenv("FAKEEXT_MODE")
	if mode == "initerror" {
		h := map[string]string{headerIdentifier: id[headerIdentifier], headerErrorType: "Extension.ConfigInvalid"}
		status, _, _ := call("POST", pathInitError, `{"errorMessage":"bad config","errorType":"ConfigInvalid"}`, h)
		rec.write(record{Kind: "init-error", Status: status})
		return 1
	}

	var listener *http.Server
	if os.Getenv("FAKEEXT_SUBSCRIBE") != "0" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakeext:", err)
			return 2
		}
		failFirst := os.Getenv("FAKEEXT_FAIL_FIRST") == "1"
		var failed bool
		listener = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			rec.mu.Lock()
			reject := failFirst && !failed
			failed = failed || reject
			if !reject {
				rec.batches++
			}
			rec.mu.Unlock()
			kind := "batch"
			if reject {
				kind = "batch-rejected"
			}
			rec.write(record{Kind: kind, Body: string(b), Host: r.Host + " " + r.Header.Get("Content-Type")})
			if reject {
				http.Error(w, "try again", http.StatusInternalServerError)
			}
		})}
		go func() { _ = listener.Serve(ln) }()
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		sub := os.Getenv("FAKEEXT_SUBSCRIPTION")
		if sub == "" {
			sub = `{"schemaVersion":"2022-12-13","types":["platform","function"],` +
				`"buffering":{"maxItems":1000,"maxBytes":262144,"timeoutMs":25},` +
				`"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:{{PORT}}/telemetry"}}`
		}
		status, _, body := call("PUT", pathTelemetry, strings.ReplaceAll(sub, "{{PORT}}", port), id)
		rec.write(record{Kind: "subscribe", Status: status, Body: body})
	}
	if mode == "stall" {
		select {}
	}

	for {
		status, _, body := call("GET", pathNext, "", id)
		rec.write(record{Kind: "event", Status: status, Event: json.RawMessage(body), ReceivedMs: time.Now().UnixMilli()})
		if status != http.StatusOK {
			return 4
		}
		var ev struct{ EventType string }
		_ = json.Unmarshal([]byte(body), &ev)
		if ev.EventType != "SHUTDOWN" {
			continue
		}
		switch mode {
		case "hang":
			status, _, body := call("GET", pathNext, "", id)
			rec.write(record{Kind: "after-shutdown", Status: status, Body: body})
			select {}
		case "exit1":
			return 1
		case "exiterror":
			h := map[string]string{headerIdentifier: id[headerIdentifier], headerErrorType: "Extension.Crash"}
			status, _, _ := call("POST", pathExitError, `{"errorMessage":"flush failed","errorType":"Crash"}`, h)
			rec.write(record{Kind: "exit-error", Status: status})
			return 0
		}
		want, _ := strconv.Atoi(os.Getenv("FAKEEXT_WAIT_BATCHES"))
		for stop := time.Now().Add(1500 * time.Millisecond); rec.batchCount() < want && time.Now().Before(stop); {
			time.Sleep(5 * time.Millisecond)
		}
		if listener != nil {
			// Like a real extension: answer the POSTs under way before exiting.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = listener.Shutdown(ctx)
		}
		return 0
	}
}

// fakeExtension returns the path of a fake extension named name.
func fakeExtension(t *testing.T, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(self, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRecords parses the fake extension's observation file.
func readRecords(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("fake extension left no records: %v", err)
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad record %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func ofKind(recs []record, kind string) []record {
	var out []record
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}
