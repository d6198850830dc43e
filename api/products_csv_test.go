package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

const (
	importPath = "/api/admin/products/import"
	exportPath = "/api/admin/products/export"
	csvHeader  = "sku,name,description,price,currency,stock\n"
)

var csvBody = map[string]string{"Content-Type": "text/csv"}

func importCSV(e *env, f fixture, body string) response {
	e.t.Helper()
	return e.do(req{method: "POST", host: f.Host, path: importPath, token: f.StaffToken, body: body, header: csvBody})
}

func TestImportAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("imp")
	if r := e.do(req{method: "POST", host: a.Host, path: "/api/catalog/products/", token: a.StaffToken, body: newProduct("OLD-1")}); r.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Code, r.Raw)
	}
	// A list read before the import is cached; the import must drop it.
	if r := e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/", token: a.UserToken}); r.Code != http.StatusOK {
		t.Fatalf("list = %d %s", r.Code, r.Raw)
	}

	t.Run("a good file is a 200 with the counts, and the next list shows it", func(t *testing.T) {
		r := importCSV(e, a, csvHeader+"NEW-1,Lamp,\"with \"\"quotes\"\"\nand a line\",3,EUR,1\nOLD-1,Widget OLD-1,,19.99,EUR,5\n")
		if r.Code != http.StatusOK || r.JSON["created"] != float64(1) || r.JSON["updated"] != float64(1) || len(r.JSON) != 2 {
			t.Fatalf("= %d %s, want 200 {created: 1, updated: 1}", r.Code, r.Raw)
		}
		l := e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/?ordering=sku", token: a.UserToken})
		res, _ := l.JSON["results"].([]any)
		if len(res) != 2 || res[0].(map[string]any)["description"] != "with \"quotes\"\nand a line" || res[1].(map[string]any)["stock"] != float64(5) {
			t.Fatalf("list after the import = %s, want both products as imported", l.Raw)
		}
	})
	t.Run("a file with a bad row is a 422 naming its line, and nothing is written", func(t *testing.T) {
		r := importCSV(e, a, csvHeader+"NEW-2,Chair,,1,EUR,1\nNEW-3,Table,,1,eur,1\n")
		if r.Code != http.StatusUnprocessableEntity || r.errorCode() != "invalid" {
			t.Fatalf("= %d %s, want 422", r.Code, r.Raw)
		}
		if d := r.errorDetails(); len(d) != 1 || !strings.HasPrefix(fmt.Sprint(d["line 3"]), "currency: ") {
			t.Fatalf("details %v, want line 3's currency alone", d)
		}
		if n := e.count(a.Schema, `SELECT count(*) FROM products WHERE sku = 'NEW-2'`); n != 0 {
			t.Fatal("the good row of a refused import was written")
		}
	})
	t.Run("a body that is not text/csv is a 415", func(t *testing.T) {
		r := e.do(req{method: "POST", host: a.Host, path: importPath, token: a.StaffToken, body: csvHeader})
		if r.Code != http.StatusUnsupportedMediaType || r.errorCode() != "unsupported_media_type" {
			t.Fatalf("= %d %s, want 415", r.Code, r.Raw)
		}
	})
	t.Run("text/csv with a charset is taken", func(t *testing.T) {
		r := e.do(req{method: "POST", host: a.Host, path: importPath, token: a.StaffToken, body: csvHeader,
			header: map[string]string{"Content-Type": "text/csv; charset=utf-8"}})
		if r.Code != http.StatusOK {
			t.Fatalf("= %d %s, want 200", r.Code, r.Raw)
		}
	})
	t.Run("a body over the server's 1 MiB but within 10 MiB is read", func(t *testing.T) {
		// Blank lines are no rows: 3 MiB of them add nothing.
		r := importCSV(e, a, csvHeader+"BIG-1,Big,,1,EUR,1\n"+strings.Repeat("\n", 3<<20))
		if r.Code != http.StatusOK || r.JSON["created"] != float64(1) {
			t.Fatalf("= %d %s, want 200 with one created", r.Code, r.Raw)
		}
	})
	t.Run("a body over 10 MiB is a 413", func(t *testing.T) {
		r := importCSV(e, a, csvHeader+strings.Repeat("\n", 10<<20))
		if r.Code != http.StatusRequestEntityTooLarge || r.errorCode() != "too_large" {
			t.Fatalf("= %d %.200s, want 413", r.Code, r.Raw)
		}
	})
	t.Run("other routes keep the server's body limit", func(t *testing.T) {
		r := e.do(req{method: "POST", host: a.Host, path: "/api/catalog/products/", token: a.StaffToken,
			body: `{"sku": "` + strings.Repeat("x", 2<<20) + `"}`})
		if r.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("= %d, want 413", r.Code)
		}
	})
	t.Run("a plain user may not import (403)", func(t *testing.T) {
		r := e.do(req{method: "POST", host: a.Host, path: importPath, token: a.UserToken, body: csvHeader, header: csvBody})
		if r.Code != http.StatusForbidden {
			t.Fatalf("= %d %s, want 403", r.Code, r.Raw)
		}
	})
}

func TestExportAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("exp")
	in := csvHeader + "B-2,Bed,\"soft, \"\"big\"\"\nbed\",120,EUR,2\nA-1,Armchair,,99.5,USD,0\n"
	if r := importCSV(e, a, in); r.Code != http.StatusOK {
		t.Fatalf("import = %d %s", r.Code, r.Raw)
	}
	r := e.do(req{method: "GET", host: a.Host, path: exportPath, token: a.StaffToken})
	if r.Code != http.StatusOK || r.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		r.Header.Get("Content-Disposition") != `attachment; filename="`+a.Schema+`-products.csv"` {
		t.Fatalf("= %d %v, want 200 text/csv as an attachment", r.Code, r.Header)
	}
	want := csvHeader + "A-1,Armchair,,99.50,USD,0\nB-2,Bed,\"soft, \"\"big\"\"\nbed\",120.00,EUR,2\n"
	if string(r.Raw) != want {
		t.Fatalf("export =\n%s\nwant\n%s", r.Raw, want)
	}
	if r := importCSV(e, a, string(r.Raw)); r.Code != http.StatusOK || r.JSON["created"] != float64(0) || r.JSON["updated"] != float64(0) {
		t.Fatalf("re-import of the export = %d %s, want nothing created or updated", r.Code, r.Raw)
	}
	if r := e.do(req{method: "GET", host: a.Host, path: exportPath, token: a.UserToken}); r.Code != http.StatusForbidden {
		t.Fatalf("a plain user's export = %d, want 403", r.Code)
	}
}
