package main

import (
	"context"
	"strings"
	"testing"
)

// Invalid idempotency flags stop the gateway before it listens.
func TestIdempotencyFlagsValidated(t *testing.T) {
	for _, args := range [][]string{
		{"--web.listen-address=127.0.0.1:0", "--push.idempotency-retention=-1s"},
		{"--web.listen-address=127.0.0.1:0", "--push.idempotency-max-keys=0"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Were the flags accepted, run would serve and stop at once.
		err := run(ctx, args)
		if err == nil || !strings.Contains(err.Error(), "idempotency") {
			t.Errorf("run(%v) = %v, want an error naming the idempotency flags", args, err)
		}
	}
}
