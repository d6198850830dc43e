package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
)

var (
	errBadJSON        = echo.NewHTTPError(400, "request body is not valid JSON")
	errRequestTimeout = echo.NewHTTPError(http.StatusRequestTimeout, "the request body did not arrive in time")
)

// decodeJSON reads exactly one JSON object into v, a pointer to a struct.
// Malformed JSON is a 400; a field of the wrong type (null included) or an
// unknown field is a 422 naming the field; an over-long body is a 413 (from
// the body limit); a body that did not arrive within the server's read
// timeout is a 408.
func decodeJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return decodeError(err)
	}
	// The decoder takes a bare null too (leaving v alone): refuse it like
	// every other value that is not an object.
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] != '{' {
		return errBadJSON
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadJSON
	}
	return checkMembers(body, v)
}

// checkMembers refuses what encoding/json lets through although no request
// schema of the document takes it: a null member, which it decodes as if
// the member were absent (so {"stock": null} reset a PUT's stock to 0), and
// a member whose name matches a field only case-insensitively ({"SKU": ..}
// set sku). body has already decoded into v.
func checkMembers(body []byte, v any) error {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return errBadJSON
	}
	details := map[string]string{}
	for name, raw := range members {
		f, ok := jsonField(t, name)
		switch {
		case !ok:
			details[name] = "is not a known field"
		case bytes.Equal(bytes.TrimSpace(raw), []byte("null")):
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			details[name] = "must be a JSON " + jsonKind(ft.Kind().String())
		}
	}
	if len(details) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "invalid request", Details: details}
	}
	return nil
}

// jsonField returns the field of struct type t whose JSON name is exactly name.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "" {
			tag = f.Name
		}
		if f.IsExported() && tag == name && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func decodeError(err error) error {
	var he *echo.HTTPError
	if errors.As(err, &he) { // the body limit's 413
		return he
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() { // the connection's read deadline
		return errRequestTimeout
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return errBadJSON
		}
		return &domain.Error{Code: domain.EINVALID, Message: "invalid request",
			Details: map[string]string{field: "must be a JSON " + jsonKind(te.Type.Kind().String())}}
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		field := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		return &domain.Error{Code: domain.EINVALID, Message: "invalid request",
			Details: map[string]string{field: "is not a known field"}}
	}
	return errBadJSON
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int32", "int64":
		return "integer"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	}
	return goKind
}
