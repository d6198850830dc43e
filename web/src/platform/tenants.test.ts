import { QueryClient } from '@tanstack/react-query';
import { describe, expect, it } from 'vitest';
import type { Page, Tenant } from '../api/types';
import {
  defaultParams,
  isFiltered,
  listKey,
  nextOrdering,
  putTenant,
  readTenantParams,
  tenantKeys,
  tenantListQuery,
  withTenantParam,
  type TenantListParams,
} from './tenants';

const sp = (s: string) => new URLSearchParams(s);

function tenant(schema: string, state: Tenant['state'] = 'active'): Tenant {
  return {
    schema,
    name: schema.toUpperCase(),
    state,
    schema_version: 3,
    cluster: 'main',
    created_at: '2026-01-02T03:04:05Z',
    updated_at: '2026-01-02T03:04:05Z',
    domains: [{ domain: `${schema}.example.com`, is_primary: true }],
  } as Tenant;
}

describe('readTenantParams', () => {
  it('an empty URL is the plain list: every tenant, oldest first, 20 a page', () => {
    expect(readTenantParams(sp(''))).toEqual({ q: '', state: '', ordering: 'created_at', limit: 20 });
    expect(readTenantParams(sp(''))).toEqual(defaultParams);
  });

  it('reads the search, the state, the sort and the page size', () => {
    expect(readTenantParams(sp('q=Acme+Corp&state=suspended&ordering=-name&limit=50'))).toEqual({
      q: 'Acme Corp',
      state: 'suspended',
      ordering: '-name',
      limit: 50,
    });
    expect(readTenantParams(sp('ordering=schema')).ordering).toBe('schema');
    expect(readTenantParams(sp('ordering=-created_at')).ordering).toBe('-created_at');
  });

  it('takes a value the API would refuse as its default', () => {
    expect(readTenantParams(sp('state=gone&ordering=price&limit=500'))).toEqual(defaultParams);
    expect(readTenantParams(sp('ordering=--name')).ordering).toBe('created_at');
    expect(readTenantParams(sp('limit=0')).limit).toBe(20);
    expect(readTenantParams(sp('limit=2.5')).limit).toBe(20);
    expect(readTenantParams(sp('limit=abc')).limit).toBe(20);
  });

  it('honours any page size the API takes, not only the offered ones', () => {
    expect(readTenantParams(sp('limit=1')).limit).toBe(1);
    expect(readTenantParams(sp('limit=100')).limit).toBe(100);
  });

  it('keeps the search as typed, cut at the longest the API takes', () => {
    expect(readTenantParams(sp('q=%20acme%20')).q).toBe(' acme ');
    expect(readTenantParams(sp(`q=${'x'.repeat(250)}`)).q).toHaveLength(200);
  });
});

describe('withTenantParam', () => {
  it('sets a parameter, keeping the others', () => {
    expect(withTenantParam(sp('state=active&other=1'), 'q', 'globex').toString()).toBe('state=active&other=1&q=globex');
    expect(withTenantParam(sp('limit=50'), 'ordering', '-schema').toString()).toBe('limit=50&ordering=-schema');
  });

  it('leaves a default out, so that the plain list keeps its plain address', () => {
    expect(withTenantParam(sp('q=acme&state=active'), 'q', '').toString()).toBe('state=active');
    expect(withTenantParam(sp('state=active'), 'state', '').toString()).toBe('');
    expect(withTenantParam(sp('ordering=-created_at'), 'ordering', 'created_at').toString()).toBe('');
    expect(withTenantParam(sp('limit=50'), 'limit', 20).toString()).toBe('');
  });

  it('does not change the parameters it was given', () => {
    const before = sp('q=acme');
    withTenantParam(before, 'q', 'globex');
    expect(before.toString()).toBe('q=acme');
  });

  it('reads back what it wrote', () => {
    const want: TenantListParams = { q: 'Ünïcode & co', state: 'deleting', ordering: '-created_at', limit: 10 };
    let u = sp('');
    for (const k of ['q', 'state', 'ordering', 'limit'] as const) u = withTenantParam(u, k, want[k]);
    expect(readTenantParams(sp(u.toString()))).toEqual(want);
  });
});

describe('tenantListQuery', () => {
  it('sends the trimmed search, the state, the sort, the size and the cursor', () => {
    expect(tenantListQuery({ q: '  acme ', state: 'suspended', ordering: 'name', limit: 10 }, 'c1')).toEqual({
      q: 'acme',
      state: 'suspended',
      ordering: 'name',
      limit: 10,
      cursor: 'c1',
    });
  });

  it('leaves out an empty search, every state and the first page’s cursor', () => {
    expect(tenantListQuery({ ...defaultParams, q: '   ' }, '')).toEqual({
      q: undefined,
      state: undefined,
      ordering: 'created_at',
      limit: 20,
      cursor: undefined,
    });
  });
});

describe('the list and its pages', () => {
  it('a click on a column sorts by it ascending, the next one descending, and so on', () => {
    expect(nextOrdering('created_at', 'name')).toBe('name');
    expect(nextOrdering('name', 'name')).toBe('-name');
    expect(nextOrdering('-name', 'name')).toBe('name');
    expect(nextOrdering('-name', 'schema')).toBe('schema');
  });

  it('a list is named by what narrows or orders it, not by the spaces around the search', () => {
    expect(listKey({ ...defaultParams, q: ' acme ' })).toBe(listKey({ ...defaultParams, q: 'acme' }));
    expect(listKey({ ...defaultParams, q: 'acme' })).not.toBe(listKey({ ...defaultParams, q: 'acm' }));
    expect(listKey({ ...defaultParams, state: 'active' })).not.toBe(listKey(defaultParams));
    expect(listKey({ ...defaultParams, ordering: '-created_at' })).not.toBe(listKey(defaultParams));
    expect(listKey({ ...defaultParams, limit: 10 })).not.toBe(listKey(defaultParams));
  });

  it('a search or a state filters; a sort or a size does not', () => {
    expect(isFiltered(defaultParams)).toBe(false);
    expect(isFiltered({ ...defaultParams, q: '  ' })).toBe(false);
    expect(isFiltered({ ...defaultParams, ordering: '-name', limit: 50 })).toBe(false);
    expect(isFiltered({ ...defaultParams, q: 'a' })).toBe(true);
    expect(isFiltered({ ...defaultParams, state: 'suspended' })).toBe(true);
  });
});

describe('putTenant', () => {
  it('shows the changed tenant on its page and in every cached page of the list, then reads the lists again', () => {
    const qc = new QueryClient();
    const a = tenant('acme');
    const b = tenant('globex');
    const first = tenantKeys.list(defaultParams, '');
    const searched = tenantKeys.list({ ...defaultParams, q: 'glob' }, '');
    qc.setQueryData<Page<Tenant>>(first, { results: [a, b], next: null });
    qc.setQueryData<Page<Tenant>>(searched, { results: [b], next: null });
    qc.setQueryData(tenantKeys.item('globex'), b);

    const suspended = tenant('globex', 'suspended');
    putTenant(qc, 'globex', suspended);
    expect(qc.getQueryData<Page<Tenant>>(first)?.results.map((t) => t.state)).toEqual(['active', 'suspended']);
    expect(qc.getQueryData<Page<Tenant>>(searched)?.results[0]).toEqual(suspended);
    expect(qc.getQueryData(tenantKeys.item('globex'))).toEqual(suspended);
    expect(qc.getQueryState(first)?.isInvalidated).toBe(true);
    expect(qc.getQueryState(searched)?.isInvalidated).toBe(true);
  });

  it('drops a deleted tenant from the lists and its page', () => {
    const qc = new QueryClient();
    const key = tenantKeys.list(defaultParams, '');
    qc.setQueryData<Page<Tenant>>(key, { results: [tenant('acme'), tenant('globex')], next: null });
    qc.setQueryData(tenantKeys.item('globex'), tenant('globex'));
    putTenant(qc, 'globex', null);
    expect(qc.getQueryData<Page<Tenant>>(key)?.results.map((t) => t.schema)).toEqual(['acme']);
    expect(qc.getQueryData(tenantKeys.item('globex'))).toBeUndefined();
  });

  it('a tenant’s page and the list never share a key, whatever the schema', () => {
    expect(tenantKeys.item('list').slice(0, 2)).not.toEqual(tenantKeys.lists);
  });
});
