import { useState, type FormEvent } from 'react';
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { cursorOf } from '../api/client';
import { describe, formErrors } from '../api/errors';
import { useAction } from '../api/useAction';
import type { Page, PasswordChange, User, UserBulk, UserBulkResult, UserCreate, UserPatch } from '../api/types';
import { HistoryPanel } from '../audit/HistoryPanel';
import { useApi, useSession } from '../auth';
import { ConfirmDialog, Empty, ErrorLine, Field, Loading, Notice, Pager, RetryError, useCursorStack } from '../components/ui';
import { formatDateTime } from '../format';
import { useDebounced } from '../useDebounced';

const pageSize = 50;

/** A flag filter of the user list: either value, or any. */
export type FlagFilter = '' | 'true' | 'false';

export interface UserFilters {
  q: string;
  staff: FlagFilter;
  active: FlagFilter;
}

/** userListQuery is the query of GET /api/admin/users/ for filters (blank ones left out). */
export function userListQuery(f: UserFilters, cursor: string) {
  return { limit: pageSize, cursor, q: f.q.trim(), is_staff: f.staff, is_active: f.active };
}

/** bulkSummary says what a bulk (de)activation did. */
export function bulkSummary(res: UserBulkResult, active: boolean): string {
  const verb = active ? 'Activated' : 'Deactivated';
  let s = `${verb} ${res.updated} user${res.updated === 1 ? '' : 's'}.`;
  if (res.not_found.length > 0) s += ` ${res.not_found.length} no longer exist${res.not_found.length === 1 ? 's' : ''}.`;
  return s;
}

/**
 * AdminUsers lets staff find users (search by email, staff and active
 * filters), create them, edit their email, (de)activate them one by one or
 * many at once, grant or revoke staff, set passwords and delete them.
 */
export function AdminUsers() {
  const api = useApi();
  const session = useSession();
  const qc = useQueryClient();
  const [filters, setFilters] = useState<UserFilters>({ q: '', staff: '', active: '' });
  const debouncedQ = useDebounced(filters.q, 300);
  const applied = { ...filters, q: debouncedQ };
  const pages = useCursorStack(JSON.stringify(applied));
  const q = useQuery({
    queryKey: ['admin', 'users', applied, pages.cursor],
    queryFn: ({ signal }) => api.get<Page<User>>('/api/admin/users/', { query: userListQuery(applied, pages.cursor), signal }),
    placeholderData: keepPreviousData,
  });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [bulkBusy, setBulkBusy] = useState(false);
  const [bulkError, setBulkError] = useState<unknown>(null);
  const [bulkDone, setBulkDone] = useState<string | null>(null);
  const next = cursorOf(q.data?.next);
  const shown = q.data?.results ?? [];
  const allShown = shown.length > 0 && shown.every((u) => selected.has(u.id));

  const toggle = (id: string, on: boolean) =>
    setSelected((s) => {
      const n = new Set(s);
      if (on) n.add(id);
      else n.delete(id);
      return n;
    });
  const bulk = async (active: boolean) => {
    setBulkBusy(true);
    setBulkError(null);
    setBulkDone(null);
    try {
      // The server refuses a deactivation that takes the caller: leave them out.
      const ids = [...selected].filter((id) => active || id !== session.userId);
      const res = await api.send<UserBulkResult>('POST', '/api/admin/users/bulk', { ids, is_active: active } satisfies UserBulk);
      setBulkDone(bulkSummary(res, active));
      setSelected(new Set());
      void qc.invalidateQueries({ queryKey: ['admin', 'users'] });
    } catch (err) {
      setBulkError(err);
    } finally {
      setBulkBusy(false);
    }
  };
  const setFilter = <K extends keyof UserFilters>(k: K, v: UserFilters[K]) => setFilters((f) => ({ ...f, [k]: v }));
  return (
    <div className="page">
      <div className="page-head">
        <h1>Users</h1>
      </div>
      <CreateUser />
      <h2>Everyone</h2>
      <div className="filters" role="search">
        <input type="search" aria-label="Search users by email" placeholder="Search by email" value={filters.q} maxLength={254} onChange={(e) => setFilter('q', e.target.value)} />
        <label>
          Staff{' '}
          <select aria-label="Staff filter" value={filters.staff} onChange={(e) => setFilter('staff', e.target.value as FlagFilter)}>
            <option value="">any</option>
            <option value="true">staff</option>
            <option value="false">not staff</option>
          </select>
        </label>
        <label>
          Active{' '}
          <select aria-label="Active filter" value={filters.active} onChange={(e) => setFilter('active', e.target.value as FlagFilter)}>
            <option value="">any</option>
            <option value="true">active</option>
            <option value="false">deactivated</option>
          </select>
        </label>
      </div>
      <div className="bulk-bar" aria-label="Selected users">
        <label className="check">
          <input
            type="checkbox"
            aria-label="Select every user shown"
            checked={allShown}
            disabled={shown.length === 0}
            onChange={(e) => setSelected(e.target.checked ? new Set(shown.map((u) => u.id)) : new Set())}
          />{' '}
          {selected.size} selected
        </label>
        <button type="button" className="btn btn-small" disabled={selected.size === 0 || bulkBusy} onClick={() => void bulk(true)}>
          Activate selected
        </button>
        <button type="button" className="btn btn-small" disabled={selected.size === 0 || bulkBusy} onClick={() => void bulk(false)}>
          Deactivate selected
        </button>
      </div>
      <ErrorLine error={bulkError} />
      {bulkDone ? <Notice kind="success">{bulkDone}</Notice> : null}
      {q.isPending ? (
        <Loading label="Loading users…" />
      ) : q.isError && !q.data ? (
        <RetryError error={q.error} onRetry={q.refetch} />
      ) : q.data.results.length === 0 ? (
        <Empty>{applied.q.trim() || applied.staff || applied.active ? 'No user matches.' : 'No users.'}</Empty>
      ) : (
        <>
          <ul className="user-list" data-testid="users">
            {q.data.results.map((u) => (
              <UserRow key={u.id} user={u} selected={selected.has(u.id)} onSelect={(on) => toggle(u.id, on)} />
            ))}
          </ul>
          <Pager page={pages.page} hasPrev={pages.hasPrev} hasNext={!!next} onPrev={pages.prev} onNext={() => next && pages.next(next)} busy={q.isFetching} />
        </>
      )}
    </div>
  );
}

function CreateUser() {
  const api = useApi();
  const qc = useQueryClient();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [staff, setStaff] = useState(false);
  const { busy, error, done, run } = useAction();
  const errs = formErrors(error, ['email', 'password', 'is_staff'], { is_staff: 'Staff' });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    await run(async () => {
      const u = await api.send<User>('POST', '/api/admin/users/', { email, password, is_staff: staff } satisfies UserCreate);
      setEmail('');
      setPassword('');
      setStaff(false);
      void qc.invalidateQueries({ queryKey: ['admin', 'users'] });
      return `Created ${u.email}${u.is_staff ? ' (staff)' : ''}.`;
    });
  };
  return (
    <form className="card form" onSubmit={submit} noValidate aria-label="New user">
      <h2>New user</h2>
      <div className="grid-2">
        <Field label="Email" name="email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} error={errs.fields.email} autoComplete="off" />
        <Field
          label="Password"
          name="password"
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={errs.fields.password}
          autoComplete="new-password"
          hint="8 to 72 characters"
        />
      </div>
      <label className="check">
        <input type="checkbox" checked={staff} onChange={(e) => setStaff(e.target.checked)} /> Staff (can edit products and manage users)
      </label>
      <ErrorLine message={errs.form} />
      {done ? <Notice kind="success">{done}</Notice> : null}
      <div className="actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create user'}
        </button>
      </div>
    </form>
  );
}

function UserRow({ user, selected, onSelect }: { user: User; selected: boolean; onSelect: (on: boolean) => void }) {
  const api = useApi();
  const session = useSession();
  const qc = useQueryClient();
  const [u, setU] = useState(user);
  const { busy, error, done, run } = useAction();
  const [resetting, setResetting] = useState(false);
  const [password, setPassword] = useState('');
  const [editing, setEditing] = useState(false);
  const [email, setEmail] = useState(user.email);
  const [deleting, setDeleting] = useState(false);
  const [history, setHistory] = useState(false);
  const me = u.id === session.userId;
  if (user.updated_at > u.updated_at) setU(user);

  const patch = (body: UserPatch, what: string) =>
    run(async () => {
      const nu = await api.send<User>('PATCH', `/api/admin/users/${u.id}/`, body);
      setU(nu);
      setEmail(nu.email);
      setEditing(false);
      void qc.invalidateQueries({ queryKey: ['admin', 'users'] });
      return what;
    });
  const saveEmail = async (e: FormEvent) => {
    e.preventDefault();
    await patch({ email }, 'Email changed.');
  };
  const remove = () =>
    run(async () => {
      await api.send<void>('DELETE', `/api/admin/users/${u.id}/`);
      setDeleting(false);
      onSelect(false);
      void qc.invalidateQueries({ queryKey: ['admin', 'users'] });
    });
  const setPass = async (e: FormEvent) => {
    e.preventDefault();
    await run(async () => {
      await api.send<void>('POST', `/api/admin/users/${u.id}/password/`, { password } satisfies PasswordChange);
      setPassword('');
      setResetting(false);
      return 'Password changed.';
    });
  };
  // A row's buttons have no fields: the server's message says it all
  // (its details only name the flag the button sent).
  const errs = resetting
    ? formErrors(error, ['password'])
    : editing
      ? formErrors(error, ['email'])
      : { form: error ? describe(error) : undefined, fields: {} as Record<string, string> };
  return (
    <li className={`user${u.is_active ? '' : ' inactive'}`} data-email={u.email}>
      <div className="user-main">
        <input type="checkbox" className="user-select" aria-label={`Select ${u.email}`} checked={selected} onChange={(e) => onSelect(e.target.checked)} />
        <span className="user-email">
          {u.email}
          {me ? <span className="tag">you</span> : null}
        </span>
        <span className="user-tags">
          {u.is_staff ? <span className="tag tag-staff">staff</span> : null}
          {!u.is_active ? <span className="tag tag-off">deactivated</span> : null}
          <span className="muted small">since {formatDateTime(u.created_at)}</span>
        </span>
      </div>
      <div className="user-actions">
        <button type="button" className="btn btn-small" disabled={busy} onClick={() => patch({ is_active: !u.is_active }, u.is_active ? 'Deactivated.' : 'Reactivated.')}>
          {u.is_active ? 'Deactivate' : 'Reactivate'}
        </button>
        <button type="button" className="btn btn-small" disabled={busy} onClick={() => patch({ is_staff: !u.is_staff }, u.is_staff ? 'Staff revoked.' : 'Staff granted.')}>
          {u.is_staff ? 'Revoke staff' : 'Grant staff'}
        </button>
        <button type="button" className="btn btn-small" disabled={busy} onClick={() => setResetting((r) => !r)} aria-expanded={resetting}>
          Reset password
        </button>
        <button type="button" className="btn btn-small" disabled={busy} onClick={() => setEditing((r) => !r)} aria-expanded={editing}>
          Edit email
        </button>
        {me ? null : (
          <button type="button" className="btn btn-small btn-danger-quiet" disabled={busy} onClick={() => setDeleting(true)}>
            Delete
          </button>
        )}
        <button type="button" className="btn btn-small" onClick={() => setHistory((h) => !h)} aria-expanded={history}>
          History
        </button>
      </div>
      {editing ? (
        <form className="user-reset" onSubmit={saveEmail} noValidate aria-label={`New email for ${u.email}`}>
          <Field label="Email" name="email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} error={errs.fields.email} autoComplete="off" />
          <button type="submit" className="btn btn-primary btn-small" disabled={busy}>
            Save email
          </button>
        </form>
      ) : null}
      {me ? null : (
        <ConfirmDialog
          open={deleting}
          title="Delete this user?"
          confirmLabel="Delete"
          busy={busy}
          error={deleting ? error : null}
          onConfirm={() => void remove()}
          onCancel={() => setDeleting(false)}
        >
          <p>
            <strong>{u.email}</strong> will be deleted with their notifications, and signed out at once. Their audit entries stay.
          </p>
        </ConfirmDialog>
      )}
      {resetting ? (
        <form className="user-reset" onSubmit={setPass} noValidate aria-label={`New password for ${u.email}`}>
          <Field label="New password" name="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} error={errs.fields.password} autoComplete="new-password" />
          <button type="submit" className="btn btn-primary btn-small" disabled={busy}>
            Set password
          </button>
        </form>
      ) : null}
      <ErrorLine message={errs.form} />
      {done ? <p className="small success-text" role="status">{done}</p> : null}
      {history ? <HistoryPanel base="/api/admin/audit/" targetType="user" targetId={u.id} /> : null}
    </li>
  );
}
