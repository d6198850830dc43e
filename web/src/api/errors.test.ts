import { describe, expect, it } from 'vitest';
import { ApiError, apiErrorFrom, describe as describeError, formErrors, isStaleWrite, isTenantSuspended, networkError, suspendedMessage } from './errors';

const headers = (h: Record<string, string>) => new Headers(h);

describe('apiErrorFrom', () => {
  it('reads the API error shape: code, message and details', () => {
    const e = apiErrorFrom(422, {
      error: { code: 'invalid', message: 'invalid product', details: { price: 'must be a non-negative decimal string', sku: 'is required' } },
    });
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(422);
    expect(e.code).toBe('invalid');
    expect(e.message).toBe('invalid product');
    expect(e.details).toEqual({ price: 'must be a non-negative decimal string', sku: 'is required' });
  });

  it('keeps Retry-After and the request id', () => {
    const e = apiErrorFrom(429, { error: { code: 'rate_limited', message: 'too many sign-in attempts; retry later' } }, headers({ 'Retry-After': '42', 'X-Request-ID': 'abc' }));
    expect(e.retryAfter).toBe(42);
    expect(e.requestId).toBe('abc');
  });

  it('names an answer that is not the API shape by its status (a proxy page)', () => {
    expect(apiErrorFrom(502, '<html>Bad gateway</html>')).toMatchObject({ code: 'unavailable', status: 502 });
    expect(apiErrorFrom(418, undefined)).toMatchObject({ code: 'error', message: 'The server answered 418.' });
  });

  it('drops details that are not strings', () => {
    const e = apiErrorFrom(422, { error: { code: 'invalid', message: 'x', details: { a: 'ok', b: 3 } } });
    expect(e.details).toEqual({ a: 'ok' });
  });
});

describe('formErrors', () => {
  const fields = ['sku', 'name', 'price', 'currency', 'stock'] as const;
  const labels = { sku: 'SKU' };

  it('puts each detail next to its field, labelled, as a sentence', () => {
    const e = apiErrorFrom(422, {
      error: { code: 'invalid', message: 'invalid product', details: { sku: 'is required', price: 'must have at most 2 decimal places' } },
    });
    expect(formErrors(e, fields, labels)).toEqual({
      form: 'Check the highlighted fields.',
      fields: { sku: 'SKU is required.', price: 'Price must have at most 2 decimal places.' },
    });
  });

  it('a taken SKU is said next to the SKU only', () => {
    const e = apiErrorFrom(409, { error: { code: 'conflict', message: 'a product with this sku already exists', details: { sku: 'is already taken' } } });
    expect(formErrors(e, fields, labels)).toEqual({ form: undefined, fields: { sku: 'SKU is already taken.' } });
  });

  it('details of no field of the form go in the form line, after the message', () => {
    const e = apiErrorFrom(422, { error: { code: 'invalid', message: 'invalid request', details: { colour: 'is not a known field', name: 'is required' } } });
    expect(formErrors(e, fields)).toEqual({
      form: 'Invalid request. Colour is not a known field.',
      fields: { name: 'Name is required.' },
    });
  });

  it('a stale If-Match says plainly that someone else saved first', () => {
    const e = apiErrorFrom(409, { error: { code: 'conflict', message: 'the product was changed by someone else', details: { 'If-Match': 'does not match the current version' } } });
    expect(isStaleWrite(e)).toBe(true);
    expect(formErrors(e, fields)).toEqual({ form: 'Someone else saved this product first.', fields: {} });
  });

  it('an error without details is one line', () => {
    const e = apiErrorFrom(401, { error: { code: 'unauthorized', message: 'invalid email or password' } });
    expect(formErrors(e, ['email', 'password'])).toEqual({ form: 'Invalid email or password.', fields: {} });
  });

  it('no error, nothing to show', () => {
    expect(formErrors(null)).toEqual({ fields: {} });
    expect(formErrors(undefined)).toEqual({ fields: {} });
  });

  it('an error that is not the API’s still reads as a line', () => {
    expect(formErrors(new Error('boom'), fields)).toEqual({ form: 'Boom.', fields: {} });
    expect(formErrors('weird', fields)).toEqual({ form: 'Something went wrong.', fields: {} });
  });
});

describe('describe', () => {
  it('says what to do for the errors a user can act on', () => {
    expect(describeError(networkError())).toBe('Could not reach the server. Check your connection and try again.');
    expect(describeError(apiErrorFrom(429, { error: { code: 'rate_limited', message: 'too many sign-in attempts; retry later' } }, headers({ 'Retry-After': '30' })))).toBe(
      'Too many sign-in attempts; retry later. Try again in 30 s.',
    );
    expect(describeError(apiErrorFrom(503, { error: { code: 'unavailable', message: 'search is unavailable' } }))).toBe(
      'Search is unavailable. Try again in a moment.',
    );
    expect(describeError(apiErrorFrom(413, { error: { code: 'too_large', message: 'Request Entity Too Large' } }))).toBe('That is too large to send.');
    expect(describeError(apiErrorFrom(500, { error: { code: 'internal', message: 'Internal Server Error' } }, headers({ 'X-Request-ID': 'r1' })))).toBe(
      'Something went wrong on the server (request r1). Try again.',
    );
    expect(describeError(apiErrorFrom(403, { error: { code: 'forbidden', message: 'staff only' } }))).toBe('Staff only.');
  });
});

describe('a suspended workspace', () => {
  const suspended = apiErrorFrom(403, { error: { code: 'tenant_suspended', message: 'this tenant is suspended' } });

  it('is told apart from a plain 403', () => {
    expect(isTenantSuspended(suspended)).toBe(true);
    expect(isTenantSuspended(apiErrorFrom(403, { error: { code: 'forbidden', message: 'staff only' } }))).toBe(false);
    expect(isTenantSuspended(apiErrorFrom(403, '<html>Forbidden</html>'))).toBe(false);
    expect(isTenantSuspended(new Error('tenant_suspended'))).toBe(false);
    expect(isTenantSuspended(null)).toBe(false);
  });

  it('reads as what it means for the user, not as the server’s words', () => {
    expect(describeError(suspended)).toBe(suspendedMessage);
    expect(suspendedMessage).toMatch(/^This workspace is suspended/);
    expect(suspendedMessage).toMatch(/data is kept/);
  });

  it('is the whole line of a form, sign-in included', () => {
    expect(formErrors(suspended, ['email', 'password'])).toEqual({ form: suspendedMessage, fields: {} });
  });
});
