package sockets_test

import (
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The package is the policy core: the policy and its tables, the errors,
// and the checked dialer. App Engine's Sockets-API emulation wraps it from
// package socketapi, above it, as tls.Dialer wraps net.Dialer; the
// metrics live in internal/obs. A new file joins coreFiles here on
// purpose, or TestBoundary fails.
var (
	// coreFiles are the package's files: small, and the part every
	// backend's security rests on.
	coreFiles = []string{
		"doc.go",
		"policy.go", "policy_rules.go", "table.go", "addrset.go", "self.go", "google.go", "errors.go",
		"dialer.go", "dialrace.go", "checked.go",
		"proxy*.go", // the connect step through an egress proxy
	}

	// moduleImports are the only packages of the module the core may
	// import: nothing above it (socketapi, urlfetch, transport), and no
	// test kit.
	moduleImports = []string{
		"github.com/outbound-go/outbound/internal/dialhook", // lends the checked dial to socketapi
		"github.com/outbound-go/outbound/internal/obs",      // the OpenTelemetry instruments
		"github.com/outbound-go/outbound/tlsconf",           // TLS with an https:// proxy
	}

	// emulationFields are the fields that configure the emulation. They
	// belong to socketapi.Dialer, which embeds the core's Dialer; the
	// core's Dialer must not grow them back.
	emulationFields = []string{"IdleTimeout", "Meter", "Registry", "AppID", "RoutePacket"}
)

// isCore reports whether a file name is one of coreFiles.
func isCore(name string) bool {
	for _, p := range coreFiles {
		if ok, _ := filepath.Match(p, name); ok {
			return true
		}
	}
	return false
}

// TestBoundary holds the core to its promise: its files are the policy,
// the errors and the checked dialer and nothing else; it imports no
// package of the module above it (the emulation in socketapi, urlfetch,
// transport) or beside it, directly or not, so the security-critical code
// can be read, and changed, without them, and nothing in them can change
// what the core allows; and its Dialer carries no field of the emulation.
// The emulation builds on the core, never the other way round.
//
// The package is type-checked from source, so the check is of what the
// package declares, not of its text.
func TestBoundary(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range pkg.GoFiles {
		if !isCore(name) {
			t.Errorf("%s is not a file of the policy core: the Sockets-API emulation belongs in package socketapi; a core file joins coreFiles in boundary_test.go", name)
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	for _, name := range pkg.IgnoredGoFiles { // other systems' files
		if !strings.HasSuffix(name, "_test.go") && !isCore(name) {
			t.Errorf("%s is not a file of the policy core", name)
		}
	}

	// Every package of the module the core depends on, directly or not.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/outbound-go/outbound"
	for line := range strings.Lines(string(out)) {
		path := strings.TrimSpace(line)
		if path == module+"/sockets" || path != module && !strings.HasPrefix(path, module+"/") {
			continue
		}
		if !slices.Contains(moduleImports, path) {
			t.Errorf("the core depends on %s: only %v are allowed", path, moduleImports)
		}
	}

	info := &types.Info{Defs: make(map[*ast.Ident]types.Object)}
	conf := types.Config{Importer: newImporter(t, fset)}
	tpkg, err := conf.Check(pkg.ImportPath, fset, files, info)
	if err != nil {
		t.Fatal(err)
	}
	dialer, _ := tpkg.Scope().Lookup("Dialer").(*types.TypeName)
	if dialer == nil {
		t.Fatal("no Dialer type")
	}
	st := dialer.Type().Underlying().(*types.Struct)
	for i := range st.NumFields() {
		if name := st.Field(i).Name(); slices.Contains(emulationFields, name) {
			t.Errorf("the Dialer has the emulation's field %s: it belongs to socketapi.Dialer", name)
		}
	}
}

// newImporter returns an importer of the package's dependencies from the
// export data the go command builds for them (go list -export), which
// takes a fraction of a second once they are built, or, without a go
// command, one that type-checks them from source, which takes seconds.
func newImporter(t *testing.T, fset *token.FileSet) types.Importer {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return importer.ForCompiler(fset, "source", nil)
	}
	out, err := exec.Command(goCmd, "list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	exports := make(map[string]string)
	for line := range strings.Lines(string(out)) {
		path, file, _ := strings.Cut(strings.TrimSpace(line), "=")
		exports[path] = file
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, os.ErrNotExist
		}
		return os.Open(file)
	})
}
