package layer

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGOARCH(t *testing.T) {
	for arch, want := range map[string]string{"x86_64": "amd64", "arm64": "arm64"} {
		if got, err := GOARCH(arch); err != nil || got != want {
			t.Errorf("GOARCH(%q) = %q, %v; want %q", arch, got, err, want)
		}
	}
	for _, arch := range []string{"", "amd64", "aarch64", "x86"} {
		if _, err := GOARCH(arch); err == nil {
			t.Errorf("GOARCH(%q): no error", arch)
		}
	}
}

// checkZip checks the layer zip's layout: extensions/ and
// extensions/<Name> holding binary, executable, nothing else.
func checkZip(t *testing.T, b, binary []byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if !f.Modified.Equal(modified) {
			t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, modified)
		}
	}
	if got, want := strings.Join(names, " "), "extensions/ extensions/"+Name; got != want {
		t.Fatalf("zip entries %q, want %q", got, want)
	}
	if m := zr.File[0].Mode(); !m.IsDir() || m.Perm() != 0o755 {
		t.Errorf("extensions/: mode %v, want drwxr-xr-x", m)
	}
	f := zr.File[1]
	if m := f.Mode(); !m.IsRegular() || m.Perm() != 0o755 {
		t.Errorf("%s: mode %v, want -rwxr-xr-x", f.Name, m)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, binary) {
		t.Errorf("%s: %d bytes, not the binary (%d bytes)", f.Name, len(got), len(binary))
	}
}

func zipBytes(t *testing.T, binary []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteZip(&buf, binary); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteZip(t *testing.T) {
	binary := []byte("\x7fELF not really, but bytes all the same")
	a, b := zipBytes(t, binary), zipBytes(t, binary)
	if !bytes.Equal(a, b) {
		t.Fatal("two zips of the same binary differ")
	}
	checkZip(t, a, binary)
	if c := zipBytes(t, append(binary, '!')); bytes.Equal(a, c) {
		t.Fatal("zips of different binaries are equal")
	}
}

// TestLayer builds the extension for both architectures as `make layer`
// and SAM do, twice each into different paths, and checks that the two
// binaries are byte for byte the same, that each is a static, stripped ELF
// executable for its architecture, and the layout of its zip.
func TestLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the extension for two architectures")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	machines := map[string]elf.Machine{"x86_64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, arch := range Architectures {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var bins [2][]byte
			for i := range bins {
				out := filepath.Join(t.TempDir(), "build", arch, Name)
				if err := Build(ctx, goCmd, "..", arch, out); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				bins[i] = b
			}
			if !bytes.Equal(bins[0], bins[1]) {
				t.Fatalf("two builds differ (%d and %d bytes): not reproducible", len(bins[0]), len(bins[1]))
			}
			checkStatic(t, bins[0], machines[arch])
			// TestWriteZip shows that equal binaries give equal zips; deflating
			// 7 MB twice more would be slow under -race.
			checkZip(t, zipBytes(t, bins[0]), bins[0])
		})
	}
}

// checkStatic checks that binary is a Linux executable for machine that
// needs no dynamic loader or shared library, carries no symbol table, and
// has no build ID or local path in it.
func checkStatic(t *testing.T, binary []byte, machine elf.Machine) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Fatalf("not ELF: %v", err)
	}
	defer f.Close()
	if f.Machine != machine || f.Type != elf.ET_EXEC {
		t.Errorf("machine %v, type %v; want %v, ET_EXEC", f.Machine, f.Type, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %v: dynamically linked", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("DT_NEEDED %v (%v): want none", libs, err)
	}
	for _, name := range []string{".symtab", ".interp", ".dynamic"} {
		if f.Section(name) != nil {
			t.Errorf("section %s present: want a static, stripped binary", name)
		}
	}
	if s := f.Section(".note.go.buildid"); s != nil {
		data, _ := s.Data()
		// The note holds "Go\x00\x00" and the ID; with -buildid= the ID is empty.
		if i := bytes.Index(data, []byte("Go\x00\x00")); i >= 0 && len(bytes.TrimRight(data[i+4:], "\x00")) > 0 {
			t.Errorf("Go build ID %q: want none", bytes.TrimRight(data[i+4:], "\x00"))
		}
	}
	wd, _ := os.Getwd()
	if wd != "" && bytes.Contains(binary, []byte(filepath.Dir(wd))) {
		t.Errorf("the binary contains the module's path %s: -trimpath missing", filepath.Dir(wd))
	}
}

// TestMakefileTags keeps the Makefile's EXTENSION_TAGS (bin/extension) and
// the layer's Tags the same binary.
func TestMakefileTags(t *testing.T) {
	f, err := os.Open("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), ":=")
		if ok && strings.TrimSpace(name) == "EXTENSION_TAGS" {
			if got := strings.TrimSpace(value); got != Tags {
				t.Errorf("Makefile EXTENSION_TAGS %q, layer.Tags %q", got, Tags)
			}
			return
		}
	}
	t.Fatal("no EXTENSION_TAGS in the Makefile")
}
