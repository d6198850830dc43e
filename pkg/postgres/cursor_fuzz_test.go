package postgres

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantworks/saas/pkg/domain"
)

// The fuzz targets of this file check the list parameters a client sends
// (?ordering=, ?limit=, ?cursor=) before they reach SQL. Beyond "no panic",
// a cursor that ValidateListParams accepts must be one PostgreSQL takes:
// every value of it is bound as a parameter and cast ($2::numeric,
// $2::timestamptz, $3::uuid...), and a value the server refuses is a 500
// where the client deserves a 422. The oracles below are PostgreSQL's input
// syntax for each type (checked against PostgreSQL 15), or a safe subset.
// Run one with
//
//	go test -run '^$' -fuzz '^FuzzListParams$' -fuzztime 10s ./pkg/postgres

// pgUUID is the syntax of PostgreSQL's uuid input: 32 hex digits, a hyphen
// allowed after any group of four, the whole optionally in braces. (Not
// "urn:uuid:", which uuid.Parse takes.)
var pgUUID = regexp.MustCompile(`^(\{[0-9a-fA-F]{4}(-?[0-9a-fA-F]{4}){7}\}|[0-9a-fA-F]{4}(-?[0-9a-fA-F]{4}){7})$`)

// pgNumeric is the part of numeric's input syntax that digits and dots can
// spell: "." alone is refused (22P02).
var pgNumeric = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// pgTimestamp is the RFC 3339 subset timestamptz takes for sure: a dot (not
// a comma) before the fraction; the year must not be 0000 and the offset
// at most 15:59 (checked apart).
var pgTimestamp = regexp.MustCompile(`^([0-9]{4})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-]([0-9]{2}):([0-9]{2}))$`)

// pgTakes reports whether PostgreSQL takes v as a value of the SQL type typ
// (one of the values of orderings).
func pgTakes(typ, v string) bool {
	switch typ {
	case "numeric":
		return pgNumeric.MatchString(v)
	case "integer":
		_, err := strconv.ParseInt(v, 10, 32)
		return err == nil
	case "timestamptz":
		m := pgTimestamp.FindStringSubmatch(v)
		if m == nil || m[1] == "0000" {
			return false
		}
		if m[4] != "" {
			h, _ := strconv.Atoi(m[4])
			if h > 15 {
				return false
			}
		}
		return true
	}
	return utf8.ValidString(v) && !strings.ContainsRune(v, 0) // text: no NUL (22021)
}

func mustInvalid(t *testing.T, err error, fields ...string) {
	t.Helper()
	var e *domain.Error
	if !errors.As(err, &e) || e.Code != domain.EINVALID {
		t.Fatalf("error %v (%T) is not an EINVALID *domain.Error", err, err)
	}
	for _, f := range fields {
		if _, ok := e.Details[f]; ok {
			return
		}
	}
	t.Fatalf("error %v names none of %v: %v", err, fields, e.Details)
}

// productAt returns a product whose sort key for ordering col is the value
// of c, so that encodeCursor writes c again.
func productAt(t *testing.T, col string, c *cursor) domain.Product {
	t.Helper()
	p := domain.Product{ID: c.ID}
	switch col {
	case "created_at", "updated_at":
		ts, err := time.Parse(time.RFC3339Nano, c.Value)
		if err != nil {
			t.Fatalf("accepted cursor value %q does not parse: %v", c.Value, err)
		}
		p.CreatedAt, p.UpdatedAt = ts, ts
	case "name":
		p.Name = c.Value
	case "sku":
		p.SKU = c.Value
	case "price":
		p.Price = c.Value
	case "stock":
		n, err := strconv.ParseInt(c.Value, 10, 64)
		if err != nil {
			t.Fatalf("accepted stock cursor %q does not parse: %v", c.Value, err)
		}
		p.Stock = n
	}
	return p
}

// sameCursor reports whether a and b designate the same position.
func sameCursor(col string, a, b *cursor) bool {
	if a.Ordering != b.Ordering || a.ID != b.ID {
		return false
	}
	if col == "created_at" || col == "updated_at" {
		ta, err1 := time.Parse(time.RFC3339Nano, a.Value)
		tb, err2 := time.Parse(time.RFC3339Nano, b.Value)
		return err1 == nil && err2 == nil && ta.Equal(tb)
	}
	return a.Value == b.Value
}

var whitelist = map[string]bool{}

func init() {
	for _, o := range []string{"created_at", "updated_at", "name", "sku", "price", "stock"} {
		whitelist[o], whitelist["-"+o] = true, true
	}
}

func rawCursor(o, v, id string) string {
	b, _ := json.Marshal(cursor{Ordering: o, Value: v, ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

const seedID = "0190a7e4-1111-7000-8000-000000000001"

func FuzzListParams(f *testing.F) {
	f.Add(20, "", "")
	f.Add(0, "name", "")
	f.Add(101, "-price", "")
	f.Add(-1, "--name", "")
	f.Add(20, "name;DROP TABLE products", "")
	f.Add(20, "Name", "")
	f.Add(20, "-created_at", rawCursor("-created_at", "2024-05-01T10:11:12.123456Z", seedID))
	f.Add(20, "-created_at", rawCursor("-created_at", "2024-05-01T10:11:12+02:00", seedID))
	f.Add(20, "", rawCursor("-created_at", "2024-05-01T10:11:12Z", seedID))
	f.Add(20, "name", rawCursor("-name", "Widget", seedID))
	f.Add(20, "name", rawCursor("name", "Widget", "not-a-uuid"))
	f.Add(20, "stock", rawCursor("stock", "+5", seedID))
	f.Add(20, "price", rawCursor("price", "1.2.3", seedID))
	f.Add(20, "name", "!!!")
	f.Add(20, "name", base64.RawURLEncoding.EncodeToString([]byte(`{"o":"name","v":"a","id":"`+seedID+`","x":1}`)))
	f.Add(20, "name", base64.RawURLEncoding.EncodeToString([]byte(`{"o":"name","v":"a","id":"`+seedID+`"} trailing`)))
	// The cursors that were accepted and then refused by PostgreSQL (500).
	f.Add(20, "price", rawCursor("price", ".", seedID))
	f.Add(20, "stock", rawCursor("stock", "9999999999", seedID))
	f.Add(20, "created_at", rawCursor("created_at", "0000-01-01T00:00:00Z", seedID))
	f.Add(20, "created_at", rawCursor("created_at", "2024-05-01T10:11:12+16:00", seedID))
	f.Add(20, "created_at", rawCursor("created_at", "2024-05-01T10:11:12,5Z", seedID))
	f.Add(20, "name", rawCursor("name", "a\x00b", seedID))
	f.Add(20, "name", rawCursor("name", "a", "urn:uuid:"+seedID))
	f.Add(20, "name", rawCursor("name", "a", "("+seedID+")"))
	f.Add(20, "name", rawCursor("name", "a", "{"+seedID+"}"))
	f.Add(20, "name", rawCursor("name", "a", strings.ReplaceAll(seedID, "-", "")))
	f.Fuzz(checkListParams)
}

// FuzzCursorFields is FuzzListParams with the cursor built from its fields
// (ordering, value, id), which the fuzzer mutates far more readily than
// base64 of JSON.
func FuzzCursorFields(f *testing.F) {
	for _, s := range [][3]string{
		{"-created_at", "2024-05-01T10:11:12.123456Z", seedID}, {"updated_at", "2024-05-01T10:11:12+02:00", seedID},
		{"name", "Widget", seedID}, {"-sku", "SKU-1", seedID}, {"price", "12.50", seedID}, {"-stock", "3", seedID},
		{"stock", "-3", seedID}, {"price", "1.", seedID}, {"name", "", seedID}, {"name", "a", ""},
		{"name", "a", strings.ToUpper(seedID)}, {"name", "a", "{" + seedID + "}"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, ordering, value, id string) {
		checkListParams(t, 20, ordering, rawCursor(ordering, value, id))
	})
}

// checkListParams validates the parameters and checks what is accepted.
func checkListParams(t *testing.T, limit int, ordering, cur string) {
	t.Helper()
	p := ListParams{Limit: limit, Ordering: ordering, Cursor: cur}
	c, err := ValidateListParams(&p)
	if err != nil {
		mustInvalid(t, err, "ordering", "limit", "cursor")
		return
	}
	if !whitelist[p.Ordering] || (ordering != "" && p.Ordering != ordering) || (ordering == "" && p.Ordering != DefaultOrdering) {
		t.Fatalf("ordering %q accepted as %q", ordering, p.Ordering)
	}
	if p.Limit < 1 || p.Limit > 100 {
		t.Fatalf("limit %d accepted", p.Limit)
	}
	if (c == nil) != (cur == "") {
		t.Fatalf("cursor %q gave %+v", cur, c)
	}
	if c == nil {
		return
	}
	col := strings.TrimPrefix(p.Ordering, "-")
	if c.Ordering != p.Ordering || !pgUUID.MatchString(c.ID) || !pgTakes(orderings[col], c.Value) {
		t.Fatalf("cursor %+v accepted for %q, but PostgreSQL would refuse it", c, p.Ordering)
	}
	// Round trip: the same position, encoded again, is accepted as an
	// equivalent cursor.
	enc := encodeCursor(p.Ordering, productAt(t, col, c))
	q := ListParams{Limit: 1, Ordering: p.Ordering, Cursor: enc}
	c2, err := ValidateListParams(&q)
	if err != nil || !sameCursor(col, c, c2) {
		t.Fatalf("cursor %+v re-encoded as %q gives %+v, %v", c, enc, c2, err)
	}
}

// FuzzProductCursor encodes the cursor of any product a client can create,
// for every ordering, and checks that it is accepted back for that
// ordering and designates the product's position.
func FuzzProductCursor(f *testing.F) {
	f.Add(uint8(0), uint64(1), uint64(2), "SKU-1", "Widget", uint64(1250), int32(3), int64(1714558272123456), int64(1714558272123456))
	f.Add(uint8(5), uint64(1), uint64(2), "a", "ß∂ƒ 漢字 🙂", uint64(0), int32(0), int64(0), int64(0))
	f.Add(uint8(8), uint64(1), uint64(2), "a", "x", uint64(99999999999999), int32(2147483647), int64(253402300799999999), int64(-1))
	// A name whose JSON escaping (\u003c for each <) made the cursor
	// longer than 1024 bytes: page two of such a list was a 422.
	f.Add(uint8(4), uint64(1), uint64(2), "a", strings.Repeat("<", 200), uint64(1), int32(1), int64(1), int64(1))
	f.Add(uint8(4), uint64(1), uint64(2), "a", "a"+strings.Repeat("\u2028", 198)+"a", uint64(1), int32(1), int64(1), int64(1))
	f.Add(uint8(4), uint64(1), uint64(2), "a", strings.Repeat("\x01", 200), uint64(1), int32(1), int64(1), int64(1))
	f.Fuzz(func(t *testing.T, ord uint8, hi, lo uint64, sku, name string, cents uint64, stock int32, created, updated int64) {
		// Only what Validate lets in is ever stored.
		price := fmt.Sprintf("%d.%02d", cents%1e14/100, cents%100)
		patch := domain.ProductPatch{SKU: &sku, Name: &name, Price: &price}
		if patch.Validate(false) != nil || stock < 0 {
			return
		}
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], hi)
		binary.BigEndian.PutUint64(id[8:], lo)
		// Timestamps as PostgreSQL keeps them: microseconds, years 1970 to 9999.
		const maxMicro = 253402300799999999
		at := func(us int64) time.Time {
			us %= maxMicro
			if us < 0 {
				us = -us
			}
			return time.UnixMicro(us).UTC()
		}
		p := domain.Product{ID: id.String(), SKU: sku, Name: name, Price: price, Currency: "EUR", Stock: int64(stock),
			CreatedAt: at(created), UpdatedAt: at(updated)}
		cols := []string{"created_at", "updated_at", "name", "sku", "price", "stock"}
		ordering := cols[int(ord/2)%len(cols)] // ord 0 created_at, 2 updated_at, 4 name, 6 sku, 8 price, 10 stock; odd: descending
		if ord%2 == 1 {
			ordering = "-" + ordering
		}
		enc := encodeCursor(ordering, p)
		q := ListParams{Limit: 20, Ordering: ordering, Cursor: enc}
		c, err := ValidateListParams(&q)
		if err != nil {
			t.Fatalf("the cursor of %+v for %q is refused: %v", p, ordering, err)
		}
		if c.ID != p.ID || c.Ordering != ordering {
			t.Fatalf("cursor %+v does not designate %+v", c, p)
		}
		var v string
		switch strings.TrimPrefix(ordering, "-") {
		case "created_at":
			v = p.CreatedAt.Format(time.RFC3339Nano)
		case "updated_at":
			v = p.UpdatedAt.Format(time.RFC3339Nano)
		case "name":
			v = p.Name
		case "sku":
			v = p.SKU
		case "price":
			v = p.Price
		case "stock":
			v = strconv.FormatInt(p.Stock, 10)
		}
		if c.Value != v {
			t.Fatalf("cursor of %+v for %q holds %q, want %q", p, ordering, c.Value, v)
		}
	})
}

// FuzzNotificationCursor decodes arbitrary notification cursors: an
// accepted one names an id of 1 or more and is, byte for byte once
// decoded, the cursor encodeIDCursor writes for that id.
func FuzzNotificationCursor(f *testing.F) {
	for _, s := range []string{"", encodeIDCursor(1), encodeIDCursor(42), encodeIDCursor(1<<63 - 1), "MA", "LTE", "MDE",
		base64.RawURLEncoding.EncodeToString([]byte("+1")), base64.RawURLEncoding.EncodeToString([]byte("9223372036854775808")),
		"MQ==", "MR", "!!", base64.RawURLEncoding.EncodeToString([]byte(" 1"))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := decodeIDCursor(s)
		if err != nil {
			mustInvalid(t, err, "cursor")
			return
		}
		if id < 1 {
			t.Fatalf("cursor %q accepted as id %d", s, id)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		canon := encodeIDCursor(id)
		craw, _ := base64.RawURLEncoding.DecodeString(canon)
		if string(raw) != string(craw) {
			t.Fatalf("cursor %q (%q) accepted as %d, whose cursor is %q (%q)", s, raw, id, canon, craw)
		}
		if back, err := decodeIDCursor(canon); err != nil || back != id {
			t.Fatalf("re-encoded cursor %q gives %d, %v; want %d", canon, back, err, id)
		}
	})
}

// FuzzNotificationCursorRoundTrip encodes every id: those of rows (1 and
// up, a bigserial) come back; the others are never accepted.
func FuzzNotificationCursorRoundTrip(f *testing.F) {
	for _, id := range []int64{1, 9, 10, 1 << 62, 1<<63 - 1, 0, -1, -1 << 63} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id int64) {
		got, err := decodeIDCursor(encodeIDCursor(id))
		switch {
		case id >= 1 && (err != nil || got != id):
			t.Fatalf("cursor of id %d gives %d, %v", id, got, err)
		case id < 1 && err == nil:
			t.Fatalf("cursor of id %d accepted as %d", id, got)
		}
	})
}

// FuzzParseUUID checks the id check in front of every query by product or
// user id (path parameters) and of cursors: what it accepts, PostgreSQL's
// uuid input takes too, as the same UUID; and it refuses no canonical UUID.
func FuzzParseUUID(f *testing.F) {
	for _, s := range []string{seedID, strings.ToUpper(seedID), "{" + seedID + "}", strings.ReplaceAll(seedID, "-", ""),
		"urn:uuid:" + seedID, "(" + seedID + ")", "x" + seedID + "y", "{" + seedID, seedID + "}", "", "0190a7e4-1111-7000-8000-00000000000g"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseUUID(s)
		if err != nil {
			if v, perr := uuid.Parse(s); perr == nil && v.String() == s {
				t.Fatalf("canonical UUID %q refused: %v", s, err)
			}
			return
		}
		if !pgUUID.MatchString(s) {
			t.Fatalf("parseUUID accepted %q, which PostgreSQL refuses", s)
		}
		hex := strings.ToLower(strings.NewReplacer("{", "", "}", "", "-", "").Replace(s))
		if hex != strings.ReplaceAll(u.String(), "-", "") {
			t.Fatalf("parseUUID(%q) = %s, PostgreSQL reads %s", s, u, hex)
		}
	})
}
