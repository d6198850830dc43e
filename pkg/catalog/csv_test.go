package catalog_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
)

const header = "sku,name,description,price,currency,stock\n"

// mustBadLines fails unless err is an EINVALID error whose details are
// exactly want (line -> a substring of its message).
func mustBadLines(t *testing.T, err error, want map[string]string) {
	t.Helper()
	if domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("error %v, want EINVALID", err)
	}
	got := domain.ErrorDetails(err)
	if len(got) != len(want) {
		t.Fatalf("details %q, want exactly the keys of %q", got, want)
	}
	for k, sub := range want {
		if !strings.Contains(got[k], sub) {
			t.Fatalf("details[%q] = %q, want it to contain %q (all: %q)", k, got[k], sub, got)
		}
	}
}

func TestParseCSVReadsWhatAnExportWrites(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
	}{
		{"the columns in the export's order", header + "A-1,Lamp,\"A lamp, \"\"bright\"\"\nwith two lines\",12.5,EUR,3\n"},
		{"the columns in another order", "stock,currency,price,description,name,sku\n3,EUR,12.5,\"A lamp, \"\"bright\"\"\nwith two lines\",Lamp,A-1\n"},
		{"a byte order mark, CRLF line ends and no final newline", "\uFEFFsku,name,description,price,currency,stock\r\nA-1,Lamp,\"A lamp, \"\"bright\"\"\nwith two lines\",12.50,EUR,3"},
		{"spaces around sku and name", header + " A-1 , Lamp ,\"A lamp, \"\"bright\"\"\nwith two lines\",12.5,EUR, 3\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := catalog.ParseCSV(strings.NewReader(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 {
				t.Fatalf("rows %+v, want 1", rows)
			}
			r := rows[0]
			if r.SKU != "A-1" || r.Name != "Lamp" || r.Description != "A lamp, \"bright\"\nwith two lines" || r.Price != "12.50" || r.Currency != "EUR" || r.Stock != 3 {
				t.Fatalf("row %+v", r)
			}
		})
	}
}

func TestParseCSVNamesEveryBadLineAsASpreadsheetNumbersIt(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"an empty file has no header", "", map[string]string{"line 1": "header row is missing"}},
		{"a header without stock", "sku,name,description,price,currency\n", map[string]string{"line 1": "missing column stock"}},
		{"a header with an unknown column", header[:len(header)-1] + ",colour\n", map[string]string{"line 1": `unknown column "colour"`}},
		{"a header naming a column twice", "sku,sku,name,description,price,currency,stock\n", map[string]string{"line 1": "column twice: sku"}},
		{"bad fields, each named, on the line of their row", header +
			"A-1,Lamp,,1.00,EUR,1\n" +
			"A-2,,,1.001,eur,-1\n" +
			"A-3,Chair,,2,EUR,many\n",
			map[string]string{"line 3": "name: must be 1 to 200 characters, without NUL; price: must be a non-negative decimal string with at most 2 decimal places and 12 integer digits; currency: must be a 3-letter ISO 4217 code in upper case; stock: must be an integer",
				"line 4": "stock: must be an integer"}},
		{"a line break inside a value and a blank line count as a spreadsheet counts them", header +
			"A-1,Lamp,\"two\nlines\",1.00,EUR,1\n" +
			"\n" +
			"A-2,Lamp,,x,EUR,1\n",
			map[string]string{"line 4": "price:"}},
		{"a SKU twice is bad the second time", header + "A-1,Lamp,,1,EUR,1\nA-2,Desk,,1,EUR,1\n A-1,Chair,,1,EUR,1\n",
			map[string]string{"line 4": "sku: A-1 is already on line 2"}},
		{"a row of the wrong width", header + "A-1,Lamp,,1,EUR\n", map[string]string{"line 2": "has 5 fields, want 6"}},
		{"a stray quote stops the reading at its line", header + "A-1,Lamp,,x,EUR,1\nA-2,La\"mp,,1,EUR,1\nA-3,,,,,\n",
			map[string]string{"line 2": "price:", "line 3": "not valid CSV"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := catalog.ParseCSV(strings.NewReader(c.in))
			if rows != nil {
				t.Fatalf("rows %+v returned with an error", rows)
			}
			mustBadLines(t, err, c.want)
		})
	}
}

func TestParseCSVListsAHundredBadLinesAndCountsTheRest(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(header)
	for i := range 250 {
		fmt.Fprintf(&b, "S-%d,Lamp,,free,EUR,1\n", i)
	}
	_, err := catalog.ParseCSV(strings.NewReader(b.String()))
	d := domain.ErrorDetails(err)
	if len(d) != catalog.MaxListedBadLines+1 || d["line 2"] == "" || d["line 101"] == "" || d["line 102"] != "" {
		t.Fatalf("details list %d entries, want lines 2 to 101 and more: %q", len(d), d)
	}
	if d["more"] != "150 more bad lines are not listed" {
		t.Fatalf("details[more] = %q", d["more"])
	}
	if msg := domain.ErrorMessage(err); msg != "250 of 250 rows are invalid; nothing was imported" {
		t.Fatalf("message %q", msg)
	}
}

func TestParseCSVReturnsAReadErrorAsItCame(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := catalog.ParseCSV(iotest.TimeoutReader(iotest.DataErrReader(strings.NewReader(header + "A-1,Lamp,,1,EUR,1\n" + strings.Repeat("x", 100000)))))
	if err == nil || domain.ErrorCode(err) == domain.EINVALID {
		t.Fatalf("error %v, want the reader's error, not a bad line", err)
	}
	_, err = catalog.ParseCSV(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want it to wrap the reader's", err)
	}
}
