package wal

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashDirEnv = "WAL_CRASH_CHILD_DIR"

// TestCrashChild is the child of TestCrashSIGKILL: it appends and syncs
// records from several goroutines, forever, and prints "seq" for each record
// whose Sync returned nil. Each record says which sequence it expects to get
// — it can't know, so it carries its writer and index instead, and the parent
// checks the format.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashSIGKILL")
	}
	l, err := Open(dir, Options{SegmentBytes: 32 << 10, Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var out sync.Mutex
	for g := range 8 {
		go func() {
			for i := 0; ; i++ {
				rec := fmt.Appendf(nil, "rec %d %d ", g, i)
				rec = append(rec, make([]byte, rand.IntN(3000))...)
				seq, err := l.Append(rec)
				if err == nil {
					err = l.Sync(context.Background(), seq)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(4)
				}
				out.Lock()
				// One write(2) per line, unbuffered: once the parent reads
				// it, it was written after Sync returned.
				os.Stdout.WriteString(strconv.FormatUint(seq, 10) + "\n")
				out.Unlock()
			}
		}()
	}
	// Rotate and truncate concurrently too, as the gateway's snapshots will.
	for {
		time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
		n, err := l.Rotate()
		if err == nil {
			err = l.TruncateBefore(n - uint64(rand.IntN(50)))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(5)
		}
	}
}

// TestCrashSIGKILL kills a process appending records with SIGKILL at a random
// moment and checks that recovery holds every record the process was told
// was durable, and only records it appended, contiguously.
func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for round := range 6 {
		dir := t.TempDir()
		var acked uint64
		// Two kills per directory: the second run recovers the first one's
		// crash and then crashes itself.
		for life := range 2 {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan uint64, 1<<16)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if n, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
						lines <- n
					}
				}
			}()
			// Wait for the first ack, then a random while, then kill.
			first, ok := <-lines
			if !ok {
				cmd.Wait()
				t.Fatalf("child exited early: %s", stderr.String())
			}
			acked = max(acked, first)
			time.Sleep(time.Duration(20+rand.IntN(200)) * time.Millisecond)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			for n := range lines { // the pipe keeps what was written before the kill
				acked = max(acked, n)
			}
			err = cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die of SIGKILL: %v; stderr: %s", err, stderr.String())
			}

			l, err := Open(dir, Options{Logger: quiet})
			if err != nil {
				t.Fatalf("round %d life %d: Open after SIGKILL: %v", round, life, err)
			}
			r := l.Recovery()
			if r.LastSeq < acked {
				t.Fatalf("round %d life %d: recovered up to %d, but %d was acknowledged", round, life, r.LastSeq, acked)
			}
			// Replay checks contiguity and CRCs; the content must be the
			// child's.
			n := 0
			err = l.Replay(0, func(seq uint64, rec []byte) error {
				n++
				if !strings.HasPrefix(string(rec), "rec ") {
					return fmt.Errorf("record %d is not the child's: %q", seq, rec[:min(len(rec), 20)])
				}
				return nil
			})
			if err != nil {
				t.Fatalf("round %d life %d: %v", round, life, err)
			}
			t.Logf("round %d life %d: acked %d, recovered %d..%d (%d in log), torn tail %d bytes",
				round, life, acked, r.FirstSeq, r.LastSeq, n, r.TruncatedBytes)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			acked = r.LastSeq // the next life starts from what was recovered
		}
	}
}
