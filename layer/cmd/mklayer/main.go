// Command mklayer builds the extension's Lambda layer for one architecture.
//
//	go run ./layer/cmd/mklayer -arch arm64 -zip dist/prometheus-lambda-arm64.zip
//	go run ./layer/cmd/mklayer -arch arm64 -dir "$ARTIFACTS_DIR"
//
// -zip writes the reproducible layer zip (`make layer`); -dir writes the
// layer's content, extensions/prometheus-lambda, into a directory, as SAM's
// makefile builds want (SAM zips $(ARTIFACTS_DIR) itself). Run it in the
// module root. See package layer.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus-lambda/prometheus-lambda/layer"
)

func main() {
	arch := flag.String("arch", "", "Lambda architecture: x86_64 or arm64")
	zipPath := flag.String("zip", "", "write the layer zip here")
	dir := flag.String("dir", "", "write the layer's content (extensions/"+layer.Name+") into this directory")
	goCmd := flag.String("go", "go", "the go command")
	flag.Parse()
	if err := run(context.Background(), *goCmd, *arch, *zipPath, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "mklayer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, goCmd, arch, zipPath, dir string) error {
	if (zipPath == "") == (dir == "") {
		return fmt.Errorf("give one of -zip and -dir")
	}
	if dir != "" {
		return layer.Build(ctx, goCmd, ".", arch, filepath.Join(dir, layer.BinaryPath))
	}
	tmp, err := os.MkdirTemp("", "mklayer")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, layer.Name)
	if err := layer.Build(ctx, goCmd, ".", arch, bin); err != nil {
		return err
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := layer.WriteZip(&buf, b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(zipPath), 0o755); err != nil {
		return err
	}
	return os.WriteFile(zipPath, buf.Bytes(), 0o644)
}
