package fuzz

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// fuzzName matches a fuzz target's name as doc.go writes it.
var fuzzName = regexp.MustCompile(`\bFuzz[A-Z][A-Za-z0-9_]*\b`)

// TestDocListsEveryTarget fails when a Fuzz function of this package is
// missing from the list in doc.go's package comment, or when the comment
// names a target that no longer exists: the list is how people find what
// to run.
func TestDocListsEveryTarget(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return strings.HasSuffix(fi.Name(), ".go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	targets := map[string]bool{}
	for _, p := range pkgs {
		for name, f := range p.Files {
			if strings.HasSuffix(name, "doc.go") && f.Doc != nil {
				doc += f.Doc.Text()
			}
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && isFuzzTarget(fn) {
					targets[fn.Name.Name] = true
				}
			}
		}
	}
	if doc == "" {
		t.Fatal("no package comment in doc.go")
	}
	if len(targets) == 0 {
		t.Fatal("found no Fuzz functions in the package")
	}
	named := map[string]bool{}
	for _, n := range fuzzName.FindAllString(doc, -1) {
		named[n] = true
	}
	for n := range targets {
		if !named[n] {
			t.Errorf("doc.go does not list fuzz target %s", n)
		}
	}
	for n := range named {
		if !targets[n] {
			t.Errorf("doc.go names %s, which is not a Fuzz function of this package", n)
		}
	}
}

// isFuzzTarget reports whether fn is what go test runs as a fuzz target: a
// function FuzzXxx taking one *testing.F.
func isFuzzTarget(fn *ast.FuncDecl) bool {
	if fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Fuzz") || len(fn.Type.Params.List) != 1 {
		return false
	}
	star, ok := fn.Type.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "testing" && sel.Sel.Name == "F"
}
