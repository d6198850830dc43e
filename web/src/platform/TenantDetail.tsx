import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useNavigate, useParams } from 'react-router';
import { ApiError, formErrors } from '../api/errors';
import type { Domain, DomainCreate, DomainPatch, Tenant, TenantMove, TenantMoveState, TenantPatch } from '../api/types';
import { useAction } from '../api/useAction';
import { HistoryPanel } from '../audit/HistoryPanel';
import { useApi } from '../auth';
import { ConfirmDialog, ErrorLine, Field, Loading, Notice } from '../components/ui';
import { formatDateTime } from '../format';
import { moveEnded, putTenant, resumeTenant, suspendTenant, tenantKeys, tenantMovePath, tenantPath } from './tenants';
import { StateTag, tenantURL } from './Tenants';

/** TenantDetail shows one tenant: rename it, manage its domains, suspend or resume it, delete it. */
export function TenantDetail() {
  const { schema = '' } = useParams();
  const api = useApi();
  const q = useQuery({
    queryKey: tenantKeys.item(schema),
    queryFn: ({ signal }) => api.get<Tenant>(tenantPath(schema), { signal }),
  });
  if (q.isPending) return <div className="page"><Loading label="Loading tenant…" /></div>;
  if (q.isError) {
    const gone = q.error instanceof ApiError && q.error.status === 404;
    return (
      <div className="page">
        <h1 className="mono">{schema}</h1>
        <ErrorLine message={gone ? 'There is no tenant with this schema (any more).' : undefined} error={gone ? undefined : q.error} />
        <Link to="/" className="btn">Back to tenants</Link>
      </div>
    );
  }
  return <TenantView tenant={q.data} />;
}

function useTenantUpdate() {
  const qc = useQueryClient();
  return (t: Tenant) => putTenant(qc, t.schema, t);
}

function TenantView({ tenant }: { tenant: Tenant }) {
  const api = useApi();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const update = useTenantUpdate();
  const [confirming, setConfirming] = useState(false);
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);

  const remove = async () => {
    setBusy(true);
    setDeleteError(null);
    try {
      await api.send<void>('DELETE', tenantPath(tenant.schema));
      putTenant(qc, tenant.schema, null);
      navigate('/', { state: { flash: `Deleted ${tenant.schema}, with its schema, search index and cached data.` } });
    } catch (err) {
      setDeleteError(err);
      setBusy(false);
    }
  };

  return (
    <div className="page page-narrow">
      <p className="crumbs">
        <Link to="/">Tenants</Link> /
      </p>
      <h1>
        {tenant.name} <StateTag state={tenant.state} />
      </h1>
      <p className="muted">
        Schema <span className="mono">{tenant.schema}</span> on cluster <span className="mono" data-testid="tenant-cluster">{tenant.cluster}</span> · migrations at version {tenant.schema_version} · created {formatDateTime(tenant.created_at)}
      </p>
      <Suspension tenant={tenant} onChanged={update} />
      <Rename tenant={tenant} onSaved={update} />
      <Domains tenant={tenant} onChanged={update} />
      <Move tenant={tenant} />
      <HistoryPanel base="/api/platform/audit/" targetType="tenant" targetId={tenant.schema} refresh={`${tenant.updated_at} ${tenant.state} ${tenant.name}`} />
      <section className="card danger-zone">
        <h2>Delete this tenant</h2>
        <p>Its domains stop answering at once; its schema (users, products, notifications), search index and cached data are dropped. This cannot be undone.</p>
        <div className="actions">
          <button
            type="button"
            className="btn btn-danger"
            onClick={() => {
              setTyped('');
              setDeleteError(null);
              setConfirming(true);
            }}
          >
            Delete tenant…
          </button>
        </div>
      </section>
      <ConfirmDialog
        open={confirming}
        title={`Delete ${tenant.name}?`}
        confirmLabel="Delete tenant"
        confirmText={tenant.schema}
        typed={typed}
        onTyped={setTyped}
        busy={busy}
        error={deleteError}
        onConfirm={remove}
        onCancel={() => setConfirming(false)}
      >
        <p>
          Everything of <strong>{tenant.name}</strong> goes: schema <span className="mono">{tenant.schema}</span>, its users and data, and{' '}
          {tenant.domains.length === 1 ? 'its domain' : `its ${tenant.domains.length} domains`}.
        </p>
      </ConfirmDialog>
    </div>
  );
}

function Rename({ tenant, onSaved }: { tenant: Tenant; onSaved: (t: Tenant) => void }) {
  const api = useApi();
  const [name, setName] = useState(tenant.name);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const errs = formErrors(error, ['name']);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(false);
    try {
      const t = await api.send<Tenant>('PATCH', tenantPath(tenant.schema), { name } satisfies TenantPatch);
      onSaved(t);
      setDone(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card form inline-form" onSubmit={submit} noValidate aria-label="Rename">
      <Field label="Display name" name="name" value={name} onChange={(e) => setName(e.target.value)} error={errs.fields.name} autoComplete="off" />
      <button type="submit" className="btn" disabled={busy || name === tenant.name}>
        {busy ? 'Saving…' : 'Rename'}
      </button>
      <ErrorLine message={errs.form} />
      {done ? <p className="small success-text" role="status">Saved.</p> : null}
    </form>
  );
}

function Domains({ tenant, onChanged }: { tenant: Tenant; onChanged: (t: Tenant) => void }) {
  const api = useApi();
  const [domain, setDomain] = useState('');
  const [primary, setPrimary] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<{ on: string; err: unknown } | null>(null);
  const errs = formErrors(error?.on === '+' ? error.err : null, ['domain', 'is_primary'], { is_primary: 'Primary' });

  const refresh = async () => {
    onChanged(await api.get<Tenant>(tenantPath(tenant.schema)));
  };
  const run = async (on: string, f: () => Promise<unknown>) => {
    setBusy(on);
    setError(null);
    try {
      await f();
      await refresh();
      return true;
    } catch (err) {
      setError({ on, err });
      return false;
    } finally {
      setBusy(null);
    }
  };
  const add = async (e: FormEvent) => {
    e.preventDefault();
    const ok = await run('+', () => api.send<Domain>('POST', `${tenantPath(tenant.schema)}domains/`, { domain, is_primary: primary } satisfies DomainCreate));
    if (ok) {
      setDomain('');
      setPrimary(false);
    }
  };
  const path = (d: string) => `${tenantPath(tenant.schema)}domains/${encodeURIComponent(d)}/`;

  return (
    <section className="card">
      <h2>Domains</h2>
      <ul className="domain-list" data-testid="domains">
        {tenant.domains.map((d) => (
          <li key={d.domain} data-domain={d.domain}>
            <div className="domain-main">
              <a href={tenantURL(d.domain)} target="_blank" rel="noreferrer" className="mono">
                {d.domain}
              </a>
              {d.is_primary ? <span className="tag">primary</span> : null}
            </div>
            <div className="domain-actions">
              {!d.is_primary ? (
                <>
                  <button type="button" className="btn btn-small" disabled={busy !== null} onClick={() => run(d.domain, () => api.send('PATCH', path(d.domain), { is_primary: true } satisfies DomainPatch))}>
                    Make primary
                  </button>
                  <button type="button" className="btn btn-small btn-danger-quiet" disabled={busy !== null} onClick={() => run(d.domain, () => api.send('DELETE', path(d.domain)))}>
                    Remove
                  </button>
                </>
              ) : (
                <span className="muted small">Make another domain primary to remove this one.</span>
              )}
            </div>
            {error?.on === d.domain ? <ErrorLine error={error.err} /> : null}
          </li>
        ))}
      </ul>
      <form className="inline-form" onSubmit={add} noValidate aria-label="Add a domain">
        <Field label="New domain" name="domain" value={domain} onChange={(e) => setDomain(e.target.value)} error={errs.fields.domain} autoComplete="off" spellCheck={false} placeholder={`${tenant.schema.replace(/_/g, '-')}-2.${location.hostname}`} />
        <label className="check">
          <input type="checkbox" checked={primary} onChange={(e) => setPrimary(e.target.checked)} /> Make it primary
        </label>
        <button type="submit" className="btn" disabled={busy !== null}>
          {busy === '+' ? 'Adding…' : 'Add domain'}
        </button>
      </form>
      <ErrorLine message={errs.form} />
      {tenant.state !== 'active' && tenant.state !== 'suspended' ? <Notice kind="warning">Domains can only change while the tenant is active or suspended.</Notice> : null}
    </section>
  );
}

/**
 * Suspension suspends an active tenant (after a confirmation) and resumes a
 * suspended one. While suspended, every request of its users (sign-in too)
 * is refused and its live notifications close; its data, search index and
 * domains are kept.
 */
function Suspension({ tenant, onChanged }: { tenant: Tenant; onChanged: (t: Tenant) => void }) {
  const api = useApi();
  const [confirming, setConfirming] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const suspend = useMutation({
    mutationFn: () => suspendTenant(api, tenant.schema),
    onSuccess: (t) => {
      onChanged(t);
      setConfirming(false);
      setDone(`Suspended ${t.schema}.`);
    },
  });
  const resume = useMutation({
    mutationFn: () => resumeTenant(api, tenant.schema),
    onSuccess: (t) => {
      onChanged(t);
      setDone(`Resumed ${t.schema}: its users can sign in again.`);
    },
  });

  if (tenant.state === 'suspended') {
    return (
      <section className="card suspended-card" aria-label="Suspended" data-testid="suspended">
        <h2>Suspended</h2>
        <p>
          Its users cannot sign in or use it: every request answers that the workspace is suspended, and its live notifications are closed. Its data,
          search index and domains are kept.
        </p>
        <div className="actions">
          <button type="button" className="btn btn-primary" disabled={resume.isPending} onClick={() => resume.mutate()}>
            {resume.isPending ? 'Resuming…' : 'Resume tenant'}
          </button>
        </div>
        <ErrorLine error={resume.error} />
        {done ? <p className="small success-text" role="status">{done}</p> : null}
      </section>
    );
  }
  if (tenant.state !== 'active') return null;
  return (
    <section className="card">
      <h2>Suspend this tenant</h2>
      <p>Its users are refused at once, sign-in too, until it is resumed; nothing of it is deleted.</p>
      <div className="actions">
        <button
          type="button"
          className="btn btn-danger-quiet"
          onClick={() => {
            suspend.reset();
            setDone(null);
            setConfirming(true);
          }}
        >
          Suspend tenant…
        </button>
      </div>
      {done ? <p className="small success-text" role="status">{done}</p> : null}
      <ConfirmDialog
        open={confirming}
        title={`Suspend ${tenant.name}?`}
        confirmLabel="Suspend tenant"
        busy={suspend.isPending}
        error={suspend.error}
        onConfirm={() => suspend.mutate()}
        onCancel={() => setConfirming(false)}
      >
        <p>
          The users of <strong>{tenant.name}</strong> are refused at once, on{' '}
          {tenant.domains.length === 1 ? 'its domain' : `its ${tenant.domains.length} domains`}: every page says the workspace is suspended, and
          their live notifications close. Its data, search index and domains are kept; resume it here at any time.
        </p>
      </ConfirmDialog>
    </section>
  );
}

/** moveLine says in words how far a move got. */
export function moveLine(m: TenantMoveState): string {
  const where = `from ${m.from} to ${m.to}`;
  switch (m.state) {
    case 'done':
      return `Moved ${where}: ${m.rows} rows copied in ${((m.copy_ms ?? 0) / 1000).toFixed(1)} s, writes paused ${Math.round(m.pause_ms ?? 0)} ms.`;
    case 'failed':
      return `The move ${where} failed and was undone; the tenant serves from ${m.from}. ${m.error ?? ''}`.trim();
    case 'copying':
      return `Moving ${where}: copying, ${m.rows} rows so far, ${m.tables_copied} of ${m.tables} tables done.`;
    default:
      return `Moving ${where}: ${m.state}.`;
  }
}

/**
 * Move moves the tenant to another PostgreSQL cluster while it serves
 * (POST .../move answers at once) and follows the move (GET .../move, once
 * a second) until it ends; the tenant then shows its new cluster.
 */
function Move({ tenant }: { tenant: Tenant }) {
  const api = useApi();
  const qc = useQueryClient();
  const [to, setTo] = useState('');
  const { busy, error, run } = useAction();
  const move = useQuery({
    queryKey: tenantKeys.move(tenant.schema),
    // 404: the tenant was never moved.
    queryFn: ({ signal }) =>
      api.get<TenantMoveState>(tenantMovePath(tenant.schema), { signal }).catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }),
    refetchInterval: (q) => (q.state.data && !moveEnded(q.state.data.state) ? 1000 : false),
  });
  const m = move.data ?? null;
  const running = m !== null && !moveEnded(m.state);
  const ended = m?.state;
  useEffect(() => {
    // The placement changed (or did not): read the tenant again.
    if (ended === 'done') void qc.invalidateQueries({ queryKey: tenantKeys.item(tenant.schema), exact: true });
  }, [ended, qc, tenant.schema]);

  if (tenant.state !== 'active' && tenant.state !== 'suspended' && m === null) return null;
  const start = async (e: FormEvent) => {
    e.preventDefault();
    await run(async () => {
      const started = await api.send<TenantMoveState>('POST', tenantMovePath(tenant.schema), { to: to.trim() } satisfies TenantMove);
      qc.setQueryData(tenantKeys.move(tenant.schema), started);
      setTo('');
    });
  };
  const errs = formErrors(error, ['to'], { to: 'Cluster' });
  return (
    <section className="card" aria-label="Move to another cluster">
      <h2>Move to another cluster</h2>
      <p>The tenant keeps serving while its schema is copied; its writes pause for a moment at the switch and then go on, on the new cluster.</p>
      {m ? (
        <p className={m.state === 'failed' ? 'small error-text' : 'small'} role="status" data-testid="move-state" data-state={m.state}>
          {moveLine(m)}
        </p>
      ) : null}
      <ErrorLine error={move.error} />
      <form className="inline-form" onSubmit={start} noValidate aria-label="Move">
        <Field label="Cluster" name="to" value={to} onChange={(e) => setTo(e.target.value)} error={errs.fields.to} autoComplete="off" hint={`Now on ${tenant.cluster}`} />
        <div className="actions">
          <button type="submit" className="btn" disabled={busy || running || !to.trim()}>
            {running ? 'Moving…' : 'Move tenant'}
          </button>
        </div>
      </form>
      <ErrorLine message={errs.form} />
    </section>
  );
}
