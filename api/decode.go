package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
)

var errBadJSON = echo.NewHTTPError(400, "request body is not valid JSON")

// decodeJSON reads exactly one JSON object into v. Malformed JSON is a 400;
// a field of the wrong type or an unknown field is a 422 naming the field;
// an over-long body is a 413 (from the body limit).
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
	return nil
}

func decodeError(err error) error {
	var he *echo.HTTPError
	if errors.As(err, &he) { // the body limit's 413
		return he
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
