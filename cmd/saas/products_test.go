package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestProductsImportAndExport(t *testing.T) {
	useServices(t)
	t.Setenv("JWT_SECRET", "")
	t.Setenv("SAAS_OPERATOR", "operator")
	for _, args := range [][]string{{"migrate", "--shared"}, {"tenant", "create", "--schema", "shop", "--name", "Shop", "--domain", "shop.localhost"}} {
		if _, errOut, code := saas(t, args...); code != 0 {
			t.Fatalf("saas %v: %s", args, errOut)
		}
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.csv", "sku,name,description,price,currency,stock\nB-2,Bed,\"soft\nand wide\",120,EUR,2\nA-1,Armchair,,99.5,USD,0\n")
	bad := write("bad.csv", "sku,name,description,price,currency,stock\nC-1,Chair,,1,EUR,1\nC-2,Chair,,free,EUR,1\nC-3,,,1,EUR,x\n")
	exported := filepath.Join(dir, "out.csv")
	wantExport := "sku,name,description,price,currency,stock\nA-1,Armchair,,99.50,USD,0\nB-2,Bed,\"soft\nand wide\",120.00,EUR,2\n"

	steps := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"a file is imported", []string{"products", "import", "--tenant", "shop", "--file", good}, 0, "imported into shop: 2 created, 0 updated, 0 unchanged"},
		{"the same file again changes nothing", []string{"products", "import", "--tenant", "shop", "--file", good}, 0, "0 created, 0 updated, 2 unchanged"},
		{"a file with bad rows lists every bad line and exits 1", []string{"products", "import", "--tenant", "shop", "--file", bad}, 1,
			"2 of 3 rows are invalid; nothing was imported\n  line 3: price: must be a non-negative decimal string with at most 2 decimal places and 12 integer digits\n  line 4: name: must be"},
		{"a missing --file is bad usage", []string{"products", "import", "--tenant", "shop"}, 2, "--file is required"},
		{"a file that is not there is bad usage", []string{"products", "import", "--tenant", "shop", "--file", filepath.Join(dir, "none.csv")}, 2, "no such file"},
		{"an unknown tenant is not found", []string{"products", "import", "--tenant", "nobody", "--file", good}, 4, "not found"},
		{"the products are exported to a file", []string{"products", "export", "--tenant", "shop", "--file", exported}, 0, "exported 2 products of shop"},
		{"an export into a folder that is not there is bad usage", []string{"products", "export", "--tenant", "shop", "--file", filepath.Join(dir, "no", "x.csv")}, 2, "--file"},
	}
	for _, s := range steps {
		out, errOut, code := saas(t, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.contains) {
			t.Fatalf("%s: saas %v exited %d with\n%s%s\nwant exit %d and %q", s.name, s.args, code, out, errOut, s.code, s.contains)
		}
	}
	if b, err := os.ReadFile(exported); err != nil || string(b) != wantExport {
		t.Fatalf("exported file %q, %v; want\n%s", b, err, wantExport)
	}
	out, errOut, code := saas(t, "products", "export", "--tenant", "shop", "--file", "-")
	if code != 0 || out != wantExport || !strings.Contains(errOut, "exported 2 products") {
		t.Fatalf("export to - exited %d: stdout %q, stderr %q; want the CSV alone on stdout", code, out, errOut)
	}

	conn, err := pgx.Connect(context.Background(), os.Getenv("DATABASE_DIRECT_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM shop.audit_log
		WHERE action = 'product.import' AND actor_kind = 'cli' AND actor_email = 'operator' AND target_type = 'import'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d product.import entries of the command line, %v; want one per import that ran", n, err)
	}
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM shop.outbox`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d outbox rows, %v; want the first import's 2", n, err)
	}
}
