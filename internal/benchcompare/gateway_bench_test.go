package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus-lambda/prometheus-lambda/gateway"
)

// newGateway returns our gateway's handler over a memory store, as
// gateway/cmd/gateway builds it with default flags.
func newGateway(b *testing.B) http.Handler {
	gw, err := gateway.New(gateway.NewMemoryStore(gateway.StoreOptions{}), gateway.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return gw
}

// BenchmarkGatewayServeHTTP drives the gateway's handler in-process with the
// load generator's body, over as many grouping keys as make bench-compare
// uses (1,000) and fewer and more (no network): where a push's CPU goes
// inside the gateway, and how it grows with the number of groups.
//
//	go test -run '^$' -bench GatewayServeHTTP -cpuprofile /tmp/gw.cpu ./internal/benchcompare/
func BenchmarkGatewayServeHTTP(b *testing.B) {
	body, err := BuildBody("protobuf", "checkout-api")
	if err != nil {
		b.Fatal(err)
	}
	for _, groups := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			paths := groupingPaths("checkout-api", groups)
			h := newGateway(b)
			serve := func(path string) {
				req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body.Bytes))
				req.Header.Set("Content-Type", body.ContentType)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
			for _, p := range paths { // every group stored before timing
				serve(p)
			}
			var next atomic.Int64
			b.SetBytes(int64(len(body.Bytes)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					serve(paths[next.Add(1)%int64(len(paths))])
				}
			})
		})
	}
}

// BenchmarkGatewayLoopback is the same through net/http on 127.0.0.1 with
// eight keep-alive clients (on two cores), as make bench-compare loads the
// binary: the handler plus the HTTP server and client.
func BenchmarkGatewayLoopback(b *testing.B) {
	body, err := BuildBody("protobuf", "checkout-api")
	if err != nil {
		b.Fatal(err)
	}
	paths := groupingPaths("checkout-api", 1000)
	srv := httptest.NewServer(newGateway(b))
	defer srv.Close()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var next atomic.Int64
	b.SetBytes(int64(len(body.Bytes)))
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if msg := push(b.Context(), client, srv.URL+paths[i%int64(len(paths))], body.ContentType, body.Bytes); msg != "" {
				b.Fatal(msg)
			}
		}
	})
}
