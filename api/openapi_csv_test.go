package api_test

import (
	"strings"
	"testing"
)

// importsAndExportsProducts exchanges the CSV import and export.
func (o *openAPIExchanges) importsAndExportsProducts(t *testing.T) {
	a, step := o.a, o.step
	good := csvHeader + "OA-CSV-1,Lamp,\"a \"\"lamp\"\"\",1,EUR,1\n"
	step(t, "staff import a CSV", nil, req{method: "POST", host: a.Host, path: importPath, token: a.StaffToken, body: good, header: csvBody}, 200, conforms)
	step(t, "a bad row is a 422", nil, req{method: "POST", host: a.Host, path: importPath, token: a.StaffToken,
		body: csvHeader + "OA-CSV-2,Lamp,,free,EUR,1\n", header: csvBody}, 422, conforms)
	step(t, "a body that is not text/csv is a 415", nil, req{method: "POST", host: a.Host, path: importPath, token: a.StaffToken, body: good}, 415, violates)
	step(t, "a body over 10 MiB is a 413", nil, req{method: "POST", host: a.Host, path: importPath, token: a.StaffToken,
		body: good + strings.Repeat("\n", 10<<20), header: csvBody}, 413, conforms)
	step(t, "a plain user may not import", nil, req{method: "POST", host: a.Host, path: importPath, token: a.UserToken, body: good, header: csvBody}, 403, conforms)
	step(t, "no token is a 401", nil, req{method: "POST", host: a.Host, path: importPath, body: good, header: csvBody}, 401, violates)

	step(t, "staff export the products", nil, req{method: "GET", host: a.Host, path: exportPath, token: a.StaffToken}, 200, conforms)
	step(t, "a plain user may not export", nil, req{method: "GET", host: a.Host, path: exportPath, token: a.UserToken}, 403, conforms)
	step(t, "an export on an unknown host is a 404", nil, req{method: "GET", host: unknownHost, path: exportPath, token: a.StaffToken}, 404, conforms)
}
