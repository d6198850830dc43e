import type { ReactElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter, Route, Routes } from 'react-router';
import { describe, expect, it, vi } from 'vitest';
import type { Page, Tenant, TenantMoveState } from '../api/types';
import { moveLine, TenantDetail } from './TenantDetail';
import { Tenants } from './Tenants';
import { readTenantParams, tenantKeys } from './tenants';

vi.mock('../auth', () => ({
  useApi: () => ({ get: () => new Promise(() => undefined), send: () => new Promise(() => undefined) }),
}));
vi.stubGlobal('location', new URL('http://localhost:8080/'));

function tenant(schema: string, state: Tenant['state']): Tenant {
  return {
    schema,
    name: `${schema} inc`,
    state,
    schema_version: 3,
    cluster: 'main',
    created_at: '2026-01-02T03:04:05Z',
    updated_at: '2026-01-02T03:04:05Z',
    domains: [{ domain: `${schema}.example.com`, is_primary: true }],
  } as Tenant;
}

/** render shows a page at url, with the list's first page (for that URL) or a tenant already loaded. */
function render(url: string, page: ReactElement, seed: (qc: QueryClient) => void): string {
  const qc = new QueryClient();
  seed(qc);
  return renderToStaticMarkup(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[url]}>
        <Routes>
          <Route path="/" element={page} />
          <Route path="/tenants/:schema" element={page} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

const listOf = (url: string, results: Tenant[], next: string | null = null) => (qc: QueryClient) =>
  qc.setQueryData<Page<Tenant>>(tenantKeys.list(readTenantParams(new URL(url, 'http://x').searchParams), ''), { results, next });

describe('Tenants', () => {
  it('shows the search, filter, sort and page size its URL holds', () => {
    const url = '/?q=glob&state=suspended&ordering=-name&limit=10';
    const html = render(url, <Tenants />, listOf(url, [tenant('globex', 'suspended')], 'http://localhost/api/platform/tenants/?cursor=c2'));
    expect(html).toMatch(/<input type="search" aria-label="Search tenants"[^>]* value="glob"/);
    expect(html).toContain('<option value="suspended" selected="">suspended</option>');
    expect(html).toMatch(/<th aria-sort="descending"><button type="button" class="sort">Name/);
    expect(html).toMatch(/<th class="hide-narrow" aria-sort="none"><button type="button" class="sort">Created/);
    expect(html).toContain('<option value="10" selected="">10</option>');
    expect(html).toContain('Page 1');
  });

  it('sorts oldest first by default, and marks a suspended tenant', () => {
    const html = render('/', <Tenants />, listOf('/', [tenant('acme', 'active'), tenant('globex', 'suspended')]));
    expect(html).toMatch(/<th class="hide-narrow" aria-sort="ascending"><button type="button" class="sort">Created/);
    expect(html).toMatch(/<tr data-schema="globex" class="row-suspended">.*<span class="tag tag-state-suspended" data-state="suspended">suspended<\/span>/);
    expect(html).toMatch(/<tr data-schema="acme">.*tag-state-active/);
    // One page only: no pager.
    expect(html).not.toContain('Next →');
  });

  it("shows each tenant's cluster, and offers a cluster for a new one", () => {
    const html = render('/', <Tenants />, listOf('/', [tenant('acme', 'active'), { ...tenant('globex', 'active'), cluster: 'pg2' }]));
    expect(html).toMatch(/<th class="hide-narrow">Cluster<\/th>/);
    expect(html).toMatch(/<tr data-schema="acme">.*data-testid="tenant-cluster">main<\/td>/);
    expect(html).toMatch(/<tr data-schema="globex">.*data-testid="tenant-cluster">pg2<\/td>/);
    expect(html).toMatch(/<form[^>]*aria-label="New tenant".*Cluster \(optional\).*name="cluster"/s);
  });

  it('says what found nothing, and offers to clear it', () => {
    const url = '/?q=%20nope%20&state=suspended';
    const html = render(url, <Tenants />, listOf(url, []));
    expect(html).toContain('No tenant matches “nope” and is suspended.');
    expect(html).toContain('Clear the search and filter');
  });

  it('an empty unfiltered list asks for the first tenant', () => {
    const html = render('/', <Tenants />, listOf('/', []));
    expect(html).toContain('No tenants yet. Create the first one above.');
  });
});

describe('TenantDetail', () => {
  const item = (t: Tenant) => (qc: QueryClient) => qc.setQueryData(tenantKeys.item(t.schema), t);

  it('says which cluster holds the tenant', () => {
    const html = render('/tenants/globex', <TenantDetail />, item({ ...tenant('globex', 'active'), cluster: 'pg2' }));
    expect(html).toContain('on cluster <span class="mono" data-testid="tenant-cluster">pg2</span>');
  });

  it('offers to suspend an active tenant, after a confirmation', () => {
    const html = render('/tenants/acme', <TenantDetail />, item(tenant('acme', 'active')));
    expect(html).toContain('Suspend tenant…');
    expect(html).not.toContain('Resume tenant');
    expect(html).toContain('Suspend acme inc?');
  });

  it('shows a suspended tenant as such, with the way to resume it', () => {
    const html = render('/tenants/globex', <TenantDetail />, item(tenant('globex', 'suspended')));
    expect(html).toMatch(/<h1>globex inc <span class="tag tag-state-suspended" data-state="suspended">suspended<\/span><\/h1>/);
    expect(html).toContain('Resume tenant');
    expect(html).not.toContain('Suspend tenant…');
    expect(html).not.toContain('Domains can only change');
  });

  it('neither suspends nor resumes a tenant being deleted', () => {
    const html = render('/tenants/gone', <TenantDetail />, item(tenant('gone', 'deleting')));
    expect(html).not.toContain('Suspend tenant…');
    expect(html).not.toContain('Resume tenant');
    expect(html).not.toContain('Move tenant');
  });

  const move = (schema: string, m: Partial<TenantMoveState>) => (qc: QueryClient) =>
    qc.setQueryData<TenantMoveState>(tenantKeys.move(schema), {
      id: 1,
      schema,
      from: 'main',
      to: 'pg2',
      state: 'pending',
      rows: 0,
      tables_copied: 0,
      tables: 0,
      started_at: '2026-01-02T03:04:05Z',
      updated_at: '2026-01-02T03:04:05Z',
      finished_at: null,
      error: null,
      cleanup_error: null,
      copy_ms: null,
      pause_ms: null,
      ...m,
    } as TenantMoveState);
  const both =
    (...seeds: ((qc: QueryClient) => void)[]) =>
    (qc: QueryClient) =>
      seeds.forEach((seed) => seed(qc));

  it('offers to move a tenant, naming the cluster it is on', () => {
    const html = render('/tenants/acme', <TenantDetail />, both(item(tenant('acme', 'active')), (qc) => qc.setQueryData(tenantKeys.move('acme'), null)));
    expect(html).toMatch(/<section class="card" aria-label="Move to another cluster">/);
    expect(html).toMatch(/name="to"/);
    expect(html).toContain('Now on main');
    // Nothing typed yet: the button waits for a cluster.
    expect(html).toMatch(/<button type="submit" class="btn" disabled="">Move tenant<\/button>/);
    expect(html).not.toContain('data-testid="move-state"');
  });

  it('follows a running move and lets no second one start', () => {
    const html = render('/tenants/acme', <TenantDetail />, both(item(tenant('acme', 'active')), move('acme', { state: 'copying', rows: 1200, tables_copied: 3, tables: 8 })));
    expect(html).toContain('data-state="copying"');
    expect(html).toContain('Moving from main to pg2: copying, 1200 rows so far, 3 of 8 tables done.');
    expect(html).toMatch(/<button type="submit" class="btn" disabled="">Moving…<\/button>/);
  });

  it('says how a move ended', () => {
    const base = { id: 1, schema: 'acme', from: 'main', to: 'pg2', rows: 5000, tables_copied: 8, tables: 8 } as TenantMoveState;
    expect(moveLine({ ...base, state: 'done', copy_ms: 2500, pause_ms: 41.6 })).toBe('Moved from main to pg2: 5000 rows copied in 2.5 s, writes paused 42 ms.');
    expect(moveLine({ ...base, state: 'failed', error: 'the target is unreachable' })).toBe(
      'The move from main to pg2 failed and was undone; the tenant serves from main. the target is unreachable',
    );
    expect(moveLine({ ...base, state: 'pausing' })).toBe('Moving from main to pg2: pausing.');
  });
});
