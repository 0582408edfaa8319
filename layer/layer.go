// Package layer builds the Lambda layer that installs the extension: a zip
// holding one file, extensions/<Name>, the extension binary compiled for
// linux and one Lambda architecture (x86_64 or arm64). Lambda unpacks a
// layer into /opt and starts every executable in /opt/extensions; the
// extension registers under its file's basename, so Name is also the name
// the Extensions API and the Telemetry API logs show.
//
// The build is static (CGO_ENABLED=0: Amazon Linux 2023 and every other
// Lambda runtime run it without a libc of a given version) and reproducible:
// the same source and Go toolchain give the same binary and the same zip,
// byte for byte (-trimpath, no VCS stamp, no build ID, fixed zip entry
// order, modes and times). `make layer` writes dist/<Name>-<arch>.zip
// through cmd/mklayer; SAM's `sam build` runs the Makefile's
// build-<LayerLogicalId> targets, which call the same code.
package layer

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Name is the extension's file name in the layer, and so the name it
// registers under: /opt/extensions/prometheus-lambda.
const Name = "prometheus-lambda"

// Package is the extension's main package, relative to the module root.
const Package = "./extension/cmd/extension"

// Tags are the build tags of the extension binary: it speaks HTTP/1.1 only,
// so net/http's bundled HTTP/2 stays out (0.5 MB). The Makefile's
// EXTENSION_TAGS says the same (a test keeps them equal).
const Tags = "nethttpomithttp2"

// Architectures are the Lambda architectures a layer is built for.
var Architectures = []string{"x86_64", "arm64"}

// GOARCH returns the Go architecture of a Lambda architecture.
func GOARCH(arch string) (string, error) {
	switch arch {
	case "x86_64":
		return "amd64", nil
	case "arm64":
		return "arm64", nil
	}
	return "", fmt.Errorf("unknown Lambda architecture %q (want x86_64 or arm64)", arch)
}

// BuildArgs are the arguments of `go build` for the extension binary, to be
// run in the module root.
func BuildArgs(out string) []string {
	return []string{
		"build",
		"-trimpath",       // no local paths in the binary
		"-buildvcs=false", // no commit or dirty flag: the bytes depend on the source only
		"-tags", Tags,
		"-ldflags=-s -w -buildid=", // stripped, and no build ID (it hashes inputs that include paths)
		"-o", out,
		Package,
	}
}

// BuildEnv is the environment of that `go build`: base (usually
// os.Environ()) with the target and the settings that change the binary
// pinned, so a developer's environment cannot make it dynamic or change its
// instruction set.
func BuildEnv(base []string, arch string) ([]string, error) {
	goarch, err := GOARCH(arch)
	if err != nil {
		return nil, err
	}
	env := append([]string(nil), base...)
	return append(env,
		"CGO_ENABLED=0", // static: no libc, no dynamic loader
		"GOOS=linux",
		"GOARCH="+goarch,
		"GOAMD64=v1",    // every x86_64 Lambda host
		"GOARM64=v8.0",  // every arm64 Lambda host (Graviton2 and later)
		"GOEXPERIMENT=", // the toolchain's defaults
		"GOFLAGS=",      // no -race, -cover, -mod=… from the caller
	), nil
}

// Build compiles the extension for arch into out, running the go command
// goCmd (e.g. "go") in moduleDir.
func Build(ctx context.Context, goCmd, moduleDir, arch, out string) error {
	env, err := BuildEnv(os.Environ(), arch)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goCmd, BuildArgs(out)...)
	cmd.Dir = moduleDir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %v\n%s", arch, err, stderr.Bytes())
	}
	return nil
}

// modified is the time of every zip entry: the MS-DOS epoch, the earliest
// time a zip can hold, so that nothing about when it was built shows.
var modified = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// BinaryPath is where the binary lies inside the layer (and, under /opt, in
// the execution environment).
const BinaryPath = "extensions/" + Name

// WriteZip writes the layer zip holding binary as extensions/<Name>: the
// directory entry extensions/ (0755), then the file (0755, executable by
// the runtime's user), both dated 1980-01-01, deflated. The same binary
// always gives the same bytes.
func WriteZip(w io.Writer, binary []byte) error {
	zw := zip.NewWriter(w)
	dir := &zip.FileHeader{Name: "extensions/", Method: zip.Store, Modified: modified}
	dir.SetMode(os.ModeDir | 0o755)
	if _, err := zw.CreateHeader(dir); err != nil {
		return err
	}
	file := &zip.FileHeader{Name: BinaryPath, Method: zip.Deflate, Modified: modified}
	file.SetMode(0o755)
	fw, err := zw.CreateHeader(file)
	if err != nil {
		return err
	}
	if _, err := fw.Write(binary); err != nil {
		return err
	}
	return zw.Close()
}
