package main

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbiddenDeps are import path prefixes that must not be linked into the
// layer binary: its size budget (≤ 8 MB stripped) and start time leave no
// room for client_golang, the generated client_model types, the protobuf
// runtime (protowire, a leaf, is allowed: internal/family's codec) or the
// AWS SDK's service clients.
var forbiddenDeps = []string{
	"github.com/prometheus/client_golang/",
	"github.com/prometheus/client_model/",
	"github.com/prometheus/common/",
	"google.golang.org/protobuf/",
	"github.com/aws/aws-sdk-go-v2/service/",
}

// allowedDep is the one protobuf package allowed; its own imports are too.
const allowedDep = "google.golang.org/protobuf/encoding/protowire"

// TestLayerBinaryDependencies lists the packages the layer binary links
// (as `make build` builds it) and fails on a forbidden one, naming the chain
// of imports that pulls it in.
func TestLayerBinaryDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	// The go command that runs this test (go test puts its GOROOT/bin first
	// on PATH).
	out, err := exec.Command("go", "list", "-deps", "-tags", "nethttpomithttp2",
		"-f", `{{.ImportPath}}:{{join .Imports " "}}`, ".").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{} // package → its imports
	var root string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, ":")
		imports[pkg] = strings.Fields(deps)
		root = pkg // go list -deps prints the named package last
	}
	allowed := map[string]bool{}
	var allow func(string)
	allow = func(p string) {
		if !allowed[p] {
			allowed[p] = true
			for _, d := range imports[p] {
				allow(d)
			}
		}
	}
	if _, ok := imports[allowedDep]; ok {
		allow(allowedDep)
	}
	bad := func(p string) bool { return !allowed[p] && forbidden(p) }
	// Report where the graph enters forbidden ground: a forbidden package
	// imported by one that is not.
	entered := map[string]bool{}
	for p, deps := range imports {
		if bad(p) {
			continue
		}
		for _, d := range deps {
			if bad(d) {
				entered[d] = true
			}
		}
	}
	n := 0
	for p := range imports {
		if bad(p) {
			n++
		}
	}
	for _, pkg := range slices.Sorted(maps.Keys(entered)) {
		t.Errorf("the layer binary links %s: %s", pkg, strings.Join(importChain(imports, root, pkg), " → "))
	}
	if n > 0 {
		t.Errorf("%d forbidden packages in all", n)
	}
}

func forbidden(pkg string) bool {
	for _, f := range forbiddenDeps {
		if strings.HasPrefix(pkg+"/", f) {
			return true
		}
	}
	return false
}

// importChain returns a shortest chain of imports from root to pkg.
func importChain(imports map[string][]string, root, pkg string) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == pkg {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, d := range imports[p] {
			if _, seen := prev[d]; !seen {
				prev[d] = p
				queue = append(queue, d)
			}
		}
	}
	return []string{pkg}
}
