package sockets_test

import (
	"fmt"
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

// The two halves of the package, by file (see "Two halves" in the package
// documentation). A new file joins one of them here; TestBoundary fails
// for a file in neither (doc.go, which declares nothing, aside).
var (
	// policyHalf is the policy and its checked dialer: small, and the
	// part every backend's security rests on.
	policyHalf = []string{
		"policy.go", "policy_rules.go", "table.go", "google.go", "errors.go",
		"dialer.go", "dialrace.go", "checked.go",
		"observe.go", // the dial's OpenTelemetry metrics
		"proxy*.go",  // the connect step through an egress proxy
	}

	// emulationHalf is App Engine's Sockets API emulation, built on the
	// policy half: *Conn and its features, and the exported dial methods
	// that hand out the policy half's connections (wrap.go).
	emulationHalf = []string{
		"conn.go", "options.go", "idle.go", "handoff*.go", "udp.go",
		"meter.go", "lookup.go", "sockopt_*.go", "wrap.go",
	}

	// emulationFields are the Dialer's fields that configure the
	// emulation. The Dialer declares them, in dialer.go, but the policy
	// half never reads them.
	emulationFields = []string{"IdleTimeout", "Meter", "Registry", "AppID", "RoutePacket"}
)

// half returns "policy" or "emulation" for a file name, or "".
func half(name string) string {
	for _, h := range []struct {
		name     string
		patterns []string
	}{{"policy", policyHalf}, {"emulation", emulationHalf}} {
		for _, p := range h.patterns {
			if ok, _ := filepath.Match(p, name); ok {
				return h.name
			}
		}
	}
	return ""
}

// TestBoundary holds the policy half to its promise: none of its files
// refers to anything the emulation half declares (a type, function,
// method, variable, constant or field), nor reads one of the Dialer's
// emulation fields. So the security-critical code can be read, and
// changed, without the emulation, and nothing in the emulation can change
// what the policy half allows. The only names of the emulation the policy
// half may write are the types of the Dialer's emulation fields (*Meter,
// *Registry), in the Dialer's declaration. The emulation builds on the
// policy half, never the other way round.
//
// The check is exact: the package is type-checked from source, and every
// identifier of a policy-half file is resolved to the object it denotes,
// so a name the two halves share by chance (Close, Read, ...) is told
// apart by what it refers to.
func TestBoundary(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range pkg.GoFiles {
		if half(name) == "" && name != "doc.go" {
			t.Errorf("%s belongs to neither half: add it to policyHalf or emulationHalf in boundary_test.go", name)
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	for _, name := range pkg.IgnoredGoFiles { // other systems' files
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		if half(name) == "" {
			t.Errorf("%s belongs to neither half: add it to policyHalf or emulationHalf in boundary_test.go", name)
		}
	}
	info := &types.Info{
		Defs:       make(map[*ast.Ident]types.Object),
		Uses:       make(map[*ast.Ident]types.Object),
		Selections: make(map[*ast.SelectorExpr]*types.Selection),
	}
	conf := types.Config{Importer: newImporter(t, fset)}
	tpkg, err := conf.Check(pkg.ImportPath, fset, files, info)
	if err != nil {
		t.Fatal(err)
	}
	fileOf := func(pos token.Pos) string { return filepath.Base(fset.Position(pos).Filename) }

	// The Dialer's declaration, where the emulation fields' types are
	// named.
	dialer, _ := tpkg.Scope().Lookup("Dialer").(*types.TypeName)
	if dialer == nil {
		t.Fatal("no Dialer type")
	}
	var dialerDecl *ast.TypeSpec
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok && info.Defs[ts.Name] == dialer {
				dialerDecl = ts
			}
			return dialerDecl == nil
		})
	}
	if dialerDecl == nil || half(fileOf(dialerDecl.Pos())) != "policy" {
		t.Fatal("the Dialer is not declared in the policy half")
	}
	inDialerDecl := func(pos token.Pos) bool { return dialerDecl.Pos() <= pos && pos < dialerDecl.End() }

	var checked int
	var problems []string
	for _, f := range files {
		name := fileOf(f.Pos())
		if half(name) != "policy" {
			continue
		}
		checked++
		for id, obj := range info.Uses {
			if fileOf(id.Pos()) != name || obj.Pkg() != tpkg || !obj.Pos().IsValid() {
				continue
			}
			if half(fileOf(obj.Pos())) != "emulation" {
				continue
			}
			if _, isType := obj.(*types.TypeName); isType && inDialerDecl(id.Pos()) {
				continue // the type of an emulation field
			}
			problems = append(problems, fmt.Sprintf("%s: the policy half refers to %s, declared in %s (emulation half)", fset.Position(id.Pos()), obj.Name(), fileOf(obj.Pos())))
		}
		for sel, s := range info.Selections {
			if fileOf(sel.Pos()) != name || s.Kind() != types.FieldVal {
				continue
			}
			if named, ok := types.Unalias(deref(s.Recv())).(*types.Named); ok && named.Obj() == dialer && slices.Contains(emulationFields, s.Obj().Name()) {
				problems = append(problems, fmt.Sprintf("%s: the policy half reads the Dialer's emulation field %s", fset.Position(sel.Pos()), s.Obj().Name()))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no policy-half file found")
	}
	slices.Sort(problems)
	for _, p := range problems {
		t.Error(p)
	}
	// Every emulation field exists: a renamed field must be renamed here.
	st := dialer.Type().Underlying().(*types.Struct)
	for _, f := range emulationFields {
		found := false
		for i := range st.NumFields() {
			found = found || st.Field(i).Name() == f
		}
		if !found {
			t.Errorf("the Dialer has no field %s: update emulationFields", f)
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

func deref(t types.Type) types.Type {
	if p, ok := t.(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}
