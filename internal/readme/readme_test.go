// Package readme holds the test that compiles every Go block of the
// repository's README.md, so that the front page never shows code that
// does not build.
package readme

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// packages are the import paths a README block may use, by the name it
// uses them with.
var packages = map[string]string{
	"context":       "context",
	"errors":        "errors",
	"fmt":           "fmt",
	"http":          "net/http",
	"httptest":      "net/http/httptest",
	"log":           "log",
	"netip":         "net/netip",
	"smtp":          "net/smtp",
	"time":          "time",
	"retryablehttp": "github.com/hashicorp/go-retryablehttp",
	"sockets":       "github.com/outbound-go/outbound/sockets",
	"socketapi":     "github.com/outbound-go/outbound/sockets/socketapi",
	"socketstest":   "github.com/outbound-go/outbound/sockets/socketstest",
	"tlsconf":       "github.com/outbound-go/outbound/tlsconf",
	"transport":     "github.com/outbound-go/outbound/transport",
	"urlfetch":      "github.com/outbound-go/outbound/urlfetch",
}

// free are the variables a block may use without declaring them, as the
// code around it in a real program would have them.
var free = []struct{ name, typ string }{
	{"ctx", "context.Context"},
	{"err", "error"},
	{"handler", "http.Handler"},
	{"rt", "*transport.Transport"},
	{"userURL", "string"},
}

var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

// TestREADMEBlocksCompile type-checks each ```go block of README.md: a
// whole file as it is, a fragment as the body of a function that returns
// an error, with the imports its package names need and the variables of
// free it does not declare itself. Only "declared and not used" is
// forgiven, since a fragment stops where its reader's code goes on.
func TestREADMEBlocksCompile(t *testing.T) {
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlock.FindAllStringSubmatch(string(text), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go block")
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "source", nil)
	for i, m := range blocks {
		src := wrap(m[1])
		name := filepath.Join(dir, "readme_block.go")
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Errorf("block %d does not parse: %v\n%s", i+1, err, m[1])
			continue
		}
		var errs []string
		conf := types.Config{Importer: imp.(types.ImporterFrom), Error: func(err error) {
			if !strings.Contains(err.Error(), "declared and not used") {
				errs = append(errs, err.Error())
			}
		}}
		conf.Check("readme", fset, []*ast.File{f}, nil)
		if len(errs) > 0 {
			t.Errorf("block %d does not compile:\n%s\n%s", i+1, strings.Join(errs, "\n"), src)
		}
	}
}

// wrap returns block as a Go file.
func wrap(block string) string {
	if strings.HasPrefix(strings.TrimSpace(block), "package ") {
		return block
	}
	var params strings.Builder
	for _, v := range free {
		declared := regexp.MustCompile(`(?m)(^|[\s,])` + v.name + `(,\s*\w+)*\s*:=`).MatchString(block)
		if !declared && regexp.MustCompile(`\b`+v.name+`\b`).MatchString(regexp.MustCompile(`//.*`).ReplaceAllString(block, "")) {
			params.WriteString(v.name + " " + v.typ + ", ")
		}
	}
	uses := regexp.MustCompile(`//.*`).ReplaceAllString(block, "") + params.String()
	var names []string
	for name := range packages {
		if regexp.MustCompile(`\b` + name + `\.`).MatchString(uses) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("package readme\n\nimport (\n")
	for _, name := range names {
		b.WriteString("\t" + name + " \"" + packages[name] + "\"\n")
	}
	b.WriteString(")\n\nfunc _(" + params.String() + ") error {\n" + block + "\treturn nil\n}\n")
	return b.String()
}
