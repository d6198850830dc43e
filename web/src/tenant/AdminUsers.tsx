import { useState, type FormEvent } from 'react';
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { cursorOf } from '../api/client';
import { describe, formErrors } from '../api/errors';
import type { Page, PasswordChange, User, UserCreate, UserPatch } from '../api/types';
import { HistoryPanel } from '../audit/HistoryPanel';
import { useApi, useSession } from '../auth';
import { Empty, ErrorLine, Field, Loading, Notice, Pager, RetryError, useCursorStack } from '../components/ui';
import { formatDateTime } from '../format';

const pageSize = 50;

/** AdminUsers lets staff create users, (de)activate them, grant or revoke staff and set passwords. */
export function AdminUsers() {
  const api = useApi();
  const pages = useCursorStack();
  const q = useQuery({
    queryKey: ['admin', 'users', pages.cursor],
    queryFn: ({ signal }) => api.get<Page<User>>('/api/admin/users/', { query: { limit: pageSize, cursor: pages.cursor }, signal }),
    placeholderData: keepPreviousData,
  });
  const next = cursorOf(q.data?.next);
  return (
    <div className="page">
      <div className="page-head">
        <h1>Users</h1>
      </div>
      <CreateUser />
      <h2>Everyone</h2>
      {q.isPending ? (
        <Loading label="Loading users…" />
      ) : q.isError && !q.data ? (
        <RetryError error={q.error} onRetry={q.refetch} />
      ) : q.data.results.length === 0 ? (
        <Empty>No users.</Empty>
      ) : (
        <>
          <ul className="user-list" data-testid="users">
            {q.data.results.map((u) => (
              <UserRow key={u.id} user={u} />
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
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const errs = formErrors(error, ['email', 'password', 'is_staff'], { is_staff: 'Staff' });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const u = await api.send<User>('POST', '/api/admin/users/', { email, password, is_staff: staff } satisfies UserCreate);
      setDone(`Created ${u.email}${u.is_staff ? ' (staff)' : ''}.`);
      setEmail('');
      setPassword('');
      setStaff(false);
      void qc.invalidateQueries({ queryKey: ['admin', 'users'] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
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

function UserRow({ user }: { user: User }) {
  const api = useApi();
  const session = useSession();
  const qc = useQueryClient();
  const [u, setU] = useState(user);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [resetting, setResetting] = useState(false);
  const [password, setPassword] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const [history, setHistory] = useState(false);
  const me = u.id === session.userId;
  if (user.updated_at > u.updated_at) setU(user);

  const patch = async (body: UserPatch, what: string) => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const nu = await api.send<User>('PATCH', `/api/admin/users/${u.id}/`, body);
      setU(nu);
      setDone(what);
      void qc.invalidateQueries({ queryKey: ['admin', 'users'] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const setPass = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await api.send<void>('POST', `/api/admin/users/${u.id}/password/`, { password } satisfies PasswordChange);
      setPassword('');
      setResetting(false);
      setDone('Password changed.');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  // A row's buttons have no fields: the server's message says it all
  // (its details only name the flag the button sent).
  const errs = resetting ? formErrors(error, ['password']) : { form: error ? describe(error) : undefined, fields: {} as Record<string, string> };
  return (
    <li className={`user${u.is_active ? '' : ' inactive'}`} data-email={u.email}>
      <div className="user-main">
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
        <button type="button" className="btn btn-small" onClick={() => setHistory((h) => !h)} aria-expanded={history}>
          History
        </button>
      </div>
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
