// Package apibudget holds the test that keeps the module's weight within
// its budgets: the exported names of each package (counted with go/ast),
// and the length of the README. Weight is a feature: every exported name
// is a promise to every user, and every README line is read by every new
// one. `go test -v ./internal/apibudget` prints the counts.
package apibudget

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The budgets. fetchPath are the packages an HTTP client of the module
// uses; kit is the public test kit.
const (
	fetchPathBudget = 160
	kitBudget       = 12
	moduleBudget    = 270
	readmeBudget    = 400
)

var (
	fetchPath = []string{"transport", "sockets", "tlsconf"}
	kit       = []string{"sockets/socketstest"}
)

// TestExportBudgets counts exported top-level identifiers (functions,
// types, variables, constants) and the exported methods of exported types
// in each package of the module, leaving out test files, main packages,
// testdata, internal packages and nested modules (the examples), and holds
// the totals to the budgets.
func TestExportBudgets(t *testing.T) {
	counts := countExports(t, "../..")
	var pkgs []string
	total := 0
	for pkg, n := range counts {
		pkgs = append(pkgs, pkg)
		total += n
	}
	slices.Sort(pkgs)
	for _, pkg := range pkgs {
		t.Logf("%4d %s", counts[pkg], pkg)
	}
	t.Logf("%4d TOTAL", total)
	sum := func(list []string) int {
		n := 0
		for _, p := range list {
			n += counts[p]
		}
		return n
	}
	if n := sum(fetchPath); n > fetchPathBudget {
		t.Errorf("the fetch path (%s) exports %d names, over its budget of %d", strings.Join(fetchPath, " + "), n, fetchPathBudget)
	}
	if n := sum(kit); n > kitBudget {
		t.Errorf("the public test kit exports %d names, over its budget of %d", n, kitBudget)
	}
	if total > moduleBudget {
		t.Errorf("the module exports %d names, over its budget of %d", total, moduleBudget)
	}
}

// TestREADMELength holds the front page to its budget.
func TestREADMELength(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n > readmeBudget {
		t.Errorf("README.md has %d lines, over its budget of %d", n, readmeBudget)
	}
}

// countExports returns the exported names of each package under root, by
// its directory relative to root.
func countExports(t *testing.T, root string) map[string]int {
	counts := map[string]int{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path == root {
				return nil
			}
			if name == "testdata" || name == "internal" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // a module of its own
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		counts[filepath.ToSlash(rel)] += exported(f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// exported counts f's exported names.
func exported(f *ast.File) int {
	n := 0
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Name.IsExported() && (d.Recv == nil || receiverExported(d.Recv)) {
				n++
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						n++
					}
				case *ast.ValueSpec:
					for _, id := range s.Names {
						if id.IsExported() {
							n++
						}
					}
				}
			}
		}
	}
	return n
}

// receiverExported reports whether a method's receiver type is exported.
func receiverExported(recv *ast.FieldList) bool {
	if len(recv.List) == 0 {
		return false
	}
	t := recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.IsExported()
		default:
			return false
		}
	}
}
