package wal

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppendSync measures acknowledged records per second: each of
// `writers` goroutines appends a 3 KiB record (the size of a Lambda
// extension's push) and waits for its Sync, as a gateway handler would.
func BenchmarkAppendSync(b *testing.B) {
	rec := make([]byte, 3<<10)
	for i := range rec {
		rec[i] = byte(i)
	}
	for _, fsync := range []bool{true, false} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("fsync=%v/writers=%d", fsync, writers), func(b *testing.B) {
				l, err := Open(b.TempDir(), Options{NoSync: !fsync, Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				b.SetBytes(int64(len(rec)))
				var wg sync.WaitGroup
				per := b.N / writers
				b.ResetTimer()
				start := time.Now()
				for w := range writers {
					n := per
					if w == 0 {
						n += b.N % writers
					}
					wg.Go(func() {
						for range n {
							seq, err := l.Append(rec)
							if err == nil {
								err = l.Sync(context.Background(), seq)
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				st := l.Stats()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
				b.ReportMetric(float64(st.Batches)/float64(b.N), "writes/record")
				b.ReportMetric(float64(st.Syncs)/float64(b.N), "syncs/record")
			})
		}
	}
}
