package harness

import (
	"context"
	"debug/buildinfo"
	"testing"
	"time"
)

// Binaries built for tests carry the race detector exactly when the tests
// run under it: otherwise races in the extension and gateway processes
// would go unnoticed by `go test -race`.
func TestBuildFollowsTheRaceDetector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := BuildExtension(ctx, "../..", t.TempDir(), "ext")
	if err != nil {
		t.Fatal(err)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if race := settings["-race"] == "true"; race != (raceFlags != nil) {
		t.Errorf("binary built with -race=%v, tests run with the race detector=%v", race, raceFlags != nil)
	}
	if settings["-tags"] != ExtensionTags {
		t.Errorf("extension built with tags %q, want %q", settings["-tags"], ExtensionTags)
	}
}
