import { useEffect, useState, type FormEvent } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import { formErrors } from '../api/errors';
import type { Page, Tenant, TenantCreate } from '../api/types';
import { useApi } from '../auth';
import { Empty, ErrorLine, Field, Loading, Notice, RetryError, useFlash } from '../components/ui';
import { formatDateTime } from '../format';

export const tenantKeys = { list: ['tenants'] as const, item: (s: string) => ['tenants', s] as const };

/** tenantURL is where a tenant's app answers: its domain, on this page's port. */
export function tenantURL(domain: string): string {
  return `${location.protocol}//${domain}${location.port ? `:${location.port}` : ''}/`;
}

export function StateTag({ state }: { state: Tenant['state'] | 'creating' }) {
  return <span className={`tag tag-state-${state}`}>{state}</span>;
}

/** Tenants lists every tenant and creates new ones. */
export function Tenants() {
  const api = useApi();
  const flash = useFlash();
  const q = useQuery({
    queryKey: tenantKeys.list,
    queryFn: ({ signal }) => api.get<Page<Tenant>>('/api/platform/tenants/', { signal }),
  });
  const [creating, setCreating] = useState<{ schema: string; name: string; domain: string } | null>(null);
  return (
    <div className="page">
      <div className="page-head">
        <h1>Tenants</h1>
      </div>
      {flash ? <Notice kind="success">{flash}</Notice> : null}
      <CreateTenant onProgress={setCreating} />
      <h2>All tenants</h2>
      {q.isPending ? (
        <Loading label="Loading tenants…" />
      ) : q.isError ? (
        <RetryError error={q.error} onRetry={q.refetch} />
      ) : q.data.results.length === 0 && !creating ? (
        <Empty>No tenants yet. Create the first one above.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="tenants-table">
            <thead>
              <tr>
                <th>Schema</th>
                <th>Name</th>
                <th>State</th>
                <th>Domains</th>
                <th className="hide-narrow">Created</th>
              </tr>
            </thead>
            <tbody>
              {creating && !q.data.results.some((t) => t.schema === creating.schema) ? (
                <tr className="row-pending">
                  <td className="mono">{creating.schema}</td>
                  <td>{creating.name}</td>
                  <td>
                    <StateTag state="creating" />
                  </td>
                  <td>{creating.domain}</td>
                  <td className="hide-narrow" />
                </tr>
              ) : null}
              {q.data.results.map((t) => (
                <tr key={t.schema} data-schema={t.schema}>
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
                  <td className="hide-narrow">{formatDateTime(t.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}


function CreateTenant({ onProgress }: { onProgress: (t: { schema: string; name: string; domain: string } | null) => void }) {
  const api = useApi();
  const qc = useQueryClient();
  const [schema, setSchema] = useState('');
  const [name, setName] = useState('');
  const [domain, setDomain] = useState('');
  const [domainTouched, setDomainTouched] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [started, setStarted] = useState<number | null>(null);
  const [elapsed, setElapsed] = useState(0);
  const [phase, setPhase] = useState<'idle' | 'creating' | 'waiting'>('idle');
  const [ready, setReady] = useState<Tenant | null>(null);
  const suggested = schema ? `${schema.replace(/_/g, '-')}.${location.hostname}` : '';
  const effectiveDomain = domainTouched ? domain : suggested;
  const errs = formErrors(error, ['schema', 'name', 'domain']);

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
    const body = { schema: schema.trim(), name, domain: effectiveDomain.trim() } satisfies TenantCreate;
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
      qc.setQueryData<Page<Tenant>>(tenantKeys.list, (old) => (old ? { ...old, results: [...old.results.filter((x) => x.schema !== t.schema), t] } : old));
      void qc.invalidateQueries({ queryKey: tenantKeys.list });
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
