//go:build race

package harness

// raceFlags builds the binaries under test with the race detector when the
// tests themselves run with it, so races in the extension and the gateway
// processes fail the suite too.
var raceFlags = []string{"-race"}
