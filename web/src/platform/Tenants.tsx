import { useEffect, useState, type FormEvent } from 'react';
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useSearchParams } from 'react-router';
import { cursorOf } from '../api/client';
import { formErrors } from '../api/errors';
import type { Tenant, TenantCreate, TenantOrderKey } from '../api/types';
import { useApi } from '../auth';
import { Empty, ErrorLine, Field, Loading, Notice, Pager, RetryError, useCursorStack, useFlash } from '../components/ui';
import { formatDateTime } from '../format';
import { useDebounced } from '../useDebounced';
import {
  fetchTenants,
  isFiltered,
  listKey,
  maxSearch,
  nextOrdering,
  pageSizes,
  putTenant,
  readTenantParams,
  tenantKeys,
  tenantStates,
  withTenantParam,
  type TenantListParams,
} from './tenants';

/** tenantURL is where a tenant's app answers: its domain, on this page's port. */
export function tenantURL(domain: string): string {
  return `${location.protocol}//${domain}${location.port ? `:${location.port}` : ''}/`;
}

export function StateTag({ state }: { state: Tenant['state'] | 'creating' }) {
  return (
    <span className={`tag tag-state-${state}`} data-state={state}>
      {state}
    </span>
  );
}

/** NewTenant is a tenant being created, as the list shows it until it is there. */
type NewTenant = { schema: string; name: string; domain: string; cluster?: string };

/** searchDebounceMs is how long typing must pause before the list is searched. */
export const searchDebounceMs = 300;

const columns: { key: TenantOrderKey | null; label: string; className?: string }[] = [
  { key: 'schema', label: 'Schema' },
  { key: 'name', label: 'Name' },
  { key: null, label: 'State' },
  { key: null, label: 'Domains' },
  { key: null, label: 'Cluster', className: 'hide-narrow' },
  { key: 'created_at', label: 'Created', className: 'hide-narrow' },
];

/** Tenants lists the tenants, a page at a time (searched, filtered, sorted), and creates new ones. */
export function Tenants() {
  const api = useApi();
  const flash = useFlash();
  const [searchParams, setSearchParams] = useSearchParams();
  const params = readTenantParams(searchParams);
  // A new search, filter, sort or size starts again at page 1, however
  // it came (a control here, the back button, the Tenants link).
  const pages = useCursorStack(listKey(params));
  const q = useQuery({
    queryKey: tenantKeys.list(params, pages.cursor),
    queryFn: ({ signal }) => fetchTenants(api, params, pages.cursor, signal),
    placeholderData: keepPreviousData,
  });
  const [creating, setCreating] = useState<NewTenant | null>(null);

  // From the latest parameters, not this render's: two quick changes must both stick.
  const setParam = <K extends keyof TenantListParams>(key: K, value: TenantListParams[K]) =>
    setSearchParams((prev) => withTenantParam(prev, key, value), { replace: true });
  const sortBy = (key: TenantOrderKey) => setParam('ordering', nextOrdering(params.ordering, key));
  const clearFilters = () =>
    setSearchParams((prev) => withTenantParam(withTenantParam(prev, 'q', ''), 'state', ''), { replace: true });

  const next = cursorOf(q.data?.next);
  const filtered = isFiltered(params);
  const pending = creating && !filtered && q.data && !q.data.results.some((t) => t.schema === creating.schema) ? creating : null;
  return (
    <div className="page">
      <div className="page-head">
        <h1>Tenants</h1>
      </div>
      {flash ? <Notice kind="success">{flash}</Notice> : null}
      <CreateTenant onProgress={setCreating} />
      <h2>All tenants</h2>
      <div className="filters tenant-filters" role="search" aria-label="Tenants">
        <SearchBox value={params.q} onSearch={(v) => setParam('q', v)} />
        <label>
          State{' '}
          <select value={params.state} onChange={(e) => setParam('state', e.target.value as TenantListParams['state'])}>
            <option value="">Any state</option>
            {tenantStates.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      </div>
      {q.isPending ? (
        <Loading label="Loading tenants…" />
      ) : q.isError && !q.data ? (
        <RetryError error={q.error} onRetry={q.refetch} />
      ) : q.data.results.length === 0 && pages.page === 1 && !pending ? (
        filtered ? (
          <Empty>
            <p>
              No tenant {params.q.trim() ? <>matches “{params.q.trim()}”</> : null}
              {params.q.trim() && params.state ? ' and ' : null}
              {params.state ? <>is {params.state}</> : null}.
            </p>
            <button type="button" className="btn" onClick={clearFilters}>
              Clear the search and filter
            </button>
          </Empty>
        ) : (
          <Empty>No tenants yet. Create the first one above.</Empty>
        )
      ) : (
        <>
          {q.isError ? <ErrorLine error={q.error} /> : null}
          <div className="table-wrap">
            <table className="table" aria-busy={q.isFetching} data-testid="tenants-table">
              <thead>
                <tr>
                  {columns.map((c) => {
                    if (!c.key) {
                      return (
                        <th key={c.label} className={c.className}>
                          {c.label}
                        </th>
                      );
                    }
                    const key = c.key;
                    const dir = params.ordering === key ? 'ascending' : params.ordering === `-${key}` ? 'descending' : undefined;
                    return (
                      <th key={key} className={c.className} aria-sort={dir ?? 'none'}>
                        <button type="button" className="sort" onClick={() => sortBy(key)}>
                          {c.label}
                          <span className="sort-mark" aria-hidden="true">
                            {dir === 'ascending' ? '▲' : dir === 'descending' ? '▼' : ''}
                          </span>
                        </button>
                      </th>
                    );
                  })}
                </tr>
              </thead>
              <tbody>
                {pending ? (
                  <tr className="row-pending">
                    <td className="mono">{pending.schema}</td>
                    <td>{pending.name}</td>
                    <td>
                      <StateTag state="creating" />
                    </td>
                    <td>{pending.domain}</td>
                    <td className="hide-narrow mono">{pending.cluster}</td>
                    <td className="hide-narrow" />
                  </tr>
                ) : null}
                {q.data.results.map((t) => (
                  <tr key={t.schema} data-schema={t.schema} className={t.state === 'suspended' ? 'row-suspended' : undefined}>
                    <td className="mono">
                      <Link to={`/tenants/${t.schema}`}>{t.schema}</Link>
                    </td>
                    <td>{t.name}</td>
                    <td>
                      <StateTag state={t.state} />
                    </td>
                    <td>
                      {t.domains.map((d) => (
                        <span key={d.domain} className="domain">
                          {d.domain}
                          {d.is_primary ? <span className="tag">primary</span> : null}
                        </span>
                      ))}
                    </td>
                    <td className="hide-narrow mono" data-testid="tenant-cluster">
                      {t.cluster}
                    </td>
                    <td className="hide-narrow">{formatDateTime(t.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {q.data.results.length === 0 && !pending ? <Empty>No more tenants.</Empty> : null}
          <div className="list-foot">
            <Pager
              page={pages.page}
              hasPrev={pages.hasPrev}
              hasNext={!!next}
              onPrev={pages.prev}
              onNext={() => next && pages.next(next)}
              busy={q.isFetching}
            />
            <label className="page-size">
              Per page{' '}
              <select value={params.limit} onChange={(e) => setParam('limit', Number(e.target.value))}>
                {(pageSizes.includes(params.limit) ? pageSizes : [...pageSizes, params.limit].sort((a, b) => a - b)).map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            </label>
          </div>
        </>
      )}
    </div>
  );
}

/**
 * SearchBox is the list's search: the URL gets what was typed once typing
 * pauses, and the box follows the URL when it changes otherwise (the back
 * button, the Tenants link).
 */
function SearchBox({ value, onSearch }: { value: string; onSearch: (v: string) => void }) {
  const [text, setText] = useState(value);
  const debounced = useDebounced(text, searchDebounceMs);
  // The URL changed: unless it is the search sent from here, show it (set
  // while rendering, as React advises for state that follows a value).
  const [seen, setSeen] = useState(value);
  if (seen !== value) {
    setSeen(value);
    if (value !== debounced) setText(value);
  }
  // Send what was typed once it has settled; not while the box is still
  // catching up with a URL changed elsewhere (debounced lags behind text).
  useEffect(() => {
    if (debounced === text && debounced !== value) onSearch(debounced);
  }, [debounced, text, value, onSearch]);
  return (
    <label className="search-field">
      Search{' '}
      <input
        type="search"
        aria-label="Search tenants"
        placeholder="Schema, name or domain"
        value={text}
        maxLength={maxSearch}
        onChange={(e) => setText(e.target.value)}
        autoComplete="off"
        spellCheck={false}
      />
    </label>
  );
}

function CreateTenant({ onProgress }: { onProgress: (t: NewTenant | null) => void }) {
  const api = useApi();
  const qc = useQueryClient();
  const [schema, setSchema] = useState('');
  const [name, setName] = useState('');
  const [domain, setDomain] = useState('');
  const [domainTouched, setDomainTouched] = useState(false);
  const [cluster, setCluster] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [started, setStarted] = useState<number | null>(null);
  const [elapsed, setElapsed] = useState(0);
  const [phase, setPhase] = useState<'idle' | 'creating' | 'waiting'>('idle');
  const [ready, setReady] = useState<Tenant | null>(null);
  const suggested = schema ? `${schema.replace(/_/g, '-')}.${location.hostname}` : '';
  const effectiveDomain = domainTouched ? domain : suggested;
  const errs = formErrors(error, ['schema', 'name', 'domain', 'cluster']);

  useEffect(() => {
    if (started === null) return;
    const t = setInterval(() => setElapsed(Date.now() - started), 200);
    return () => clearInterval(t);
  }, [started]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setReady(null);
    setPhase('creating');
    setStarted(Date.now());
    setElapsed(0);
    // No cluster: the server picks the one with the fewest tenants.
    const body: TenantCreate = { schema: schema.trim(), name, domain: effectiveDomain.trim() };
    if (cluster.trim()) body.cluster = cluster.trim();
    onProgress(body);
    try {
      let t = await api.send<Tenant>('POST', '/api/platform/tenants/', body);
      // The API answers once the tenant is active; should it ever answer
      // earlier, wait here until it is.
      setPhase('waiting');
      for (let i = 0; t.state === 'provisioning' && i < 120; i++) {
        await new Promise((r) => setTimeout(r, 500));
        t = await api.get<Tenant>(`/api/platform/tenants/${t.schema}/`);
      }
      setReady(t);
      setSchema('');
      setName('');
      setDomain('');
      setDomainTouched(false);
      setCluster('');
      putTenant(qc, t.schema, t);
    } catch (err) {
      setError(err);
    } finally {
      setPhase('idle');
      setStarted(null);
      onProgress(null);
    }
  };

  const busy = phase !== 'idle';
  // The API answers once the tenant is ready and reports no steps on the
  // way: the bar says that work is going on, and the line what it is.
  return (
    <form className="card form" onSubmit={submit} noValidate aria-label="New tenant">
      <h2>New tenant</h2>
      <fieldset disabled={busy}>
        <div className="grid-3">
          <Field
            label="Schema"
            name="schema"
            value={schema}
            onChange={(e) => setSchema(e.target.value.toLowerCase())}
            error={errs.fields.schema}
            hint="a-z, 0-9 and _, 3 to 63, starting with a letter"
            autoComplete="off"
            spellCheck={false}
          />
          <Field label="Name" name="name" value={name} onChange={(e) => setName(e.target.value)} error={errs.fields.name} autoComplete="off" />
          <Field
            label="Domain"
            name="domain"
            value={effectiveDomain}
            onChange={(e) => {
              setDomainTouched(true);
              setDomain(e.target.value);
            }}
            error={errs.fields.domain}
            autoComplete="off"
            spellCheck={false}
            hint="The host its users sign in on"
          />
          <Field
            label="Cluster (optional)"
            name="cluster"
            value={cluster}
            onChange={(e) => setCluster(e.target.value.toLowerCase())}
            error={errs.fields.cluster}
            autoComplete="off"
            spellCheck={false}
            hint="The PostgreSQL cluster to hold it, e.g. main; empty: the one with the fewest tenants"
          />
        </div>
      </fieldset>
      <ErrorLine message={errs.form} />
      {busy ? (
        <div className="progress-box" role="status" aria-live="polite" data-testid="create-progress">
          <div className="progress" aria-hidden="true">
            <div className="progress-bar" />
          </div>
          <p>
            {phase === 'waiting'
              ? 'Created; waiting until it is active'
              : 'Creating its schema, running its migrations and creating its search index, all or nothing'}
            … <span className="muted">{(elapsed / 1000).toFixed(1)} s</span>
          </p>
        </div>
      ) : null}
      {ready ? (
        <Notice kind="success">
          <span data-testid="tenant-ready">
            <strong>{ready.name}</strong> is {ready.state}. Its users sign in at{' '}
            <a href={tenantURL(ready.domains[0]?.domain ?? '')} target="_blank" rel="noreferrer">
              {tenantURL(ready.domains[0]?.domain ?? '')}
            </a>{' '}
            · <Link to={`/tenants/${ready.schema}`}>manage</Link>
          </span>
        </Notice>
      ) : null}
      <div className="actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create tenant'}
        </button>
      </div>
    </form>
  );
}
