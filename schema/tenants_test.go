package schema

import "testing"

func TestUpSectionIsWhatRunsInTheTenantsTransaction(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		up        string
		gooseOnly bool
	}{
		{
			name: "the Up section alone, without its Down",
			file: "-- +goose Up\nALTER TABLE products ADD COLUMN a int;\n-- +goose Down\nALTER TABLE products DROP COLUMN a;\n",
			up:   "ALTER TABLE products ADD COLUMN a int;\n",
		},
		{
			name: "StatementBegin and End leave the function body whole",
			file: "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND $$;\n-- +goose StatementEnd\n",
			up:   "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND $$;\n",
		},
		{
			name:      "NO TRANSACTION goes to goose",
			file:      "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON products (a);\n",
			gooseOnly: true,
		},
		{
			name:      "ENVSUB ON goes to goose",
			file:      "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${X}';\n",
			gooseOnly: true,
		},
		{
			name:      "an unknown annotation goes to goose, which reports it",
			file:      "-- +goose Up\n-- +goose Sideways\nSELECT 1;\n",
			gooseOnly: true,
		},
		{
			name:      "a file without an Up section goes to goose",
			file:      "ALTER TABLE products ADD COLUMN a int;\n",
			gooseOnly: true,
		},
		{
			name:      "an Up section of comments only goes to goose",
			file:      "-- +goose Up\n\n-- +goose Down\nSELECT 1;\n",
			gooseOnly: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, gooseOnly := upSection(tt.file)
			if gooseOnly != tt.gooseOnly {
				t.Fatalf("gooseOnly = %t, want %t", gooseOnly, tt.gooseOnly)
			}
			if !tt.gooseOnly && up != tt.up {
				t.Fatalf("up = %q, want %q", up, tt.up)
			}
		})
	}
}

func TestTheRealTenantMigrationsRunInTheTenantsTransaction(t *testing.T) {
	steps, err := parseSteps(Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 {
		t.Fatal("no tenant migrations parsed")
	}
	for i, s := range steps {
		if s.gooseOnly {
			t.Errorf("%s would go to goose: every tenant migration so far runs in one transaction", s.name)
		}
		if i > 0 && steps[i-1].version >= s.version {
			t.Errorf("steps out of order: %d then %d", steps[i-1].version, s.version)
		}
	}
}
