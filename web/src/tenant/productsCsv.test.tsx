import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../api/client';
import { ApiError, apiErrorFrom } from '../api/errors';
import { ImportOutcome } from './ProductsCsv';
import { badLinesOf, exportProducts, importProducts, importSummary } from './productsCsv';

vi.mock('../auth', () => ({ useApi: () => ({}) }));

const refused = apiErrorFrom(422, {
  error: {
    code: 'invalid',
    message: '3 of 250 rows are invalid; nothing was imported',
    details: { 'line 12': 'sku: A-1 is already on line 2', more: '1 more bad lines are not listed', 'line 3': 'price: must be a non-negative decimal string' },
  },
});

describe('badLinesOf', () => {
  it('lists the bad lines in line order, the note of the rest last', () => {
    expect(badLinesOf(refused)).toEqual([
      { line: 3, message: 'price: must be a non-negative decimal string' },
      { line: 12, message: 'sku: A-1 is already on line 2' },
      { line: null, message: '1 more bad lines are not listed' },
    ]);
  });

  it('is empty for any other error', () => {
    expect(badLinesOf(new ApiError(413, 'too_large', 'Request Entity Too Large'))).toEqual([]);
    expect(badLinesOf(new Error('x'))).toEqual([]);
  });
});

describe('ImportOutcome', () => {
  it('shows every bad line with its number', () => {
    const html = renderToStaticMarkup(<ImportOutcome error={refused} />);
    expect(html).toContain('<li data-line="3"><strong>Line 3: </strong>price: must be a non-negative decimal string</li>');
    expect(html).toContain('<li data-line="12"><strong>Line 12: </strong>sku: A-1 is already on line 2</li>');
    expect(html).toContain('<li>1 more bad lines are not listed</li>');
    expect(html).toContain('nothing was imported');
  });

  it('says what an import created and updated', () => {
    expect(renderToStaticMarkup(<ImportOutcome result={{ created: 2, updated: 1 }} />)).toContain('Imported: 2 created, 1 updated.');
    expect(importSummary({ created: 0, updated: 0 })).toContain('nothing to change');
  });

  it('shows nothing before an import', () => {
    expect(renderToStaticMarkup(<ImportOutcome />)).toBe('');
  });
});

describe('importProducts and exportProducts', () => {
  it('sends the file as text/csv with the token, and reads the export as a file', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const fetch = vi.fn(async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return url.endsWith('/import')
        ? new Response('{"created":1,"updated":0}', { status: 200, headers: { 'Content-Type': 'application/json' } })
        : new Response('sku,name\n', { status: 200, headers: { 'Content-Type': 'text/csv' } });
    });
    const api = new ApiClient({ token: () => 'tok', fetch: fetch as unknown as typeof globalThis.fetch });
    const file = new Blob(['sku,name,description,price,currency,stock\nA-1,Lamp,,1,EUR,1\n']);
    expect(await importProducts(api, file)).toEqual({ created: 1, updated: 0 });
    const headers = calls[0].init.headers as Record<string, string>;
    expect(calls[0].url).toBe('/api/admin/products/import');
    expect(calls[0].init.method).toBe('POST');
    expect(headers['Content-Type']).toBe('text/csv');
    expect(headers.Authorization).toBe('Bearer tok');
    expect(calls[0].init.body).toBe(file);

    expect(await (await exportProducts(api)).text()).toBe('sku,name\n');
    expect(calls[1].url).toBe('/api/admin/products/export');
  });

  it('turns a refused import into an ApiError naming the lines', async () => {
    const fetch = async () =>
      new Response(JSON.stringify({ error: { code: 'invalid', message: 'm', details: { 'line 2': 'name: must be 1 to 200 characters' } } }), {
        status: 422,
      });
    const api = new ApiClient({ token: () => 'tok', fetch: fetch as unknown as typeof globalThis.fetch });
    const err = await importProducts(api, new Blob([''])).catch((e: unknown) => e);
    expect(badLinesOf(err)).toEqual([{ line: 2, message: 'name: must be 1 to 200 characters' }]);
  });
});
