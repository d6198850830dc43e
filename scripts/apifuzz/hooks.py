"""Schemathesis hooks of scripts/apifuzz.sh (loaded with SCHEMATHESIS_HOOKS).

Each exception here is one case a check cannot judge from the document,
named as narrowly as the answer allows; anything else still fails. The
imports reach into Schemathesis's own modules: check them when changing the
version pinned in requirements.txt.
"""

import json

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance


def _invalid_fields(response):
    """The fields a 422 error body names in its details."""
    try:
        details = json.loads(response.content)["error"].get("details") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()
    return set(details) if isinstance(details, dict) else set()


def _json_body(case):
    return case.body if isinstance(case.body, dict) else {}


def _unjudgeable_rejection(response, case):
    """Whether a 422 for schema-valid data is one the schema cannot foresee."""
    if response.status_code != 422:
        return False
    fields = _invalid_fields(response)
    # A cursor is an opaque token the server mints for a list's next page,
    # as the document says: any string is schema-valid, but one the server
    # did not mint for this list is no cursor of it.
    if fields == {"cursor"} and (case.query or {}).get("cursor"):
        return True
    # A password may have at most 72 bytes (bcrypt reads no more), which
    # JSON Schema cannot say: its maxLength counts characters.
    body = _json_body(case)
    for field in ("password", "new"):
        value = body.get(field)
        if fields == {field} and isinstance(value, str) and len(value.encode("utf-8")) > 72:
            return True
    # A password change must name the caller's current password, which no
    # schema can know: any other string is schema-valid and a 422 naming
    # current.
    if fields == {"current"} and isinstance(body.get("current"), str):
        return True
    # A product import's body is any text/csv to the document; whether it
    # is a product CSV (its header row, each row a valid product) is what
    # the 422 reports, line by line.
    if case.path.endswith("/products/import") and fields and all(f.startswith("line ") or f == "more" for f in fields):
        return True
    return False


@schemathesis.check
def positive_data_acceptance_but_unjudgeable(ctx, response, case):
    """positive_data_acceptance, less the rejections _unjudgeable_rejection names."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if _unjudgeable_rejection(response, case):
            return None
        raise


def _drop_upgraded_connection(response, *args, **kwargs):
    # A 101 makes the connection a WebSocket, which requests cannot speak,
    # yet its pool would hand the connection to the next request: close it.
    if response.status_code == 101:
        response.raw.close()
    return response


@schemathesis.hook
def before_call(context, case, kwargs):
    hooks = kwargs.setdefault("hooks", {})
    hooks.setdefault("response", []).append(_drop_upgraded_connection)
