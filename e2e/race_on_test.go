//go:build race

package e2e

// raceFlags builds the binaries under test with the race detector when the
// suite itself runs with it, so races in the extension and the gateway
// processes fail the suite too.
var raceFlags = []string{"-race"}
