//go:build race

package compat

// raceFlags builds bin/gateway with the race detector when the suite itself
// runs with it, so races in the gateway process fail the suite too.
var raceFlags = []string{"-race"}
