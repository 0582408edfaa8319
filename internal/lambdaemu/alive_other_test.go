//go:build !unix

package lambdaemu

import "testing"

func assertGone(*testing.T, int) {}
