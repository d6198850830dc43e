import { useState, type FormEvent } from 'react';
import { keepPreviousData, useQuery, useQueryClient } from '@tanstack/react-query';
import { cursorOf } from '../api/client';
import { describe, formErrors } from '../api/errors';
import { useAction } from '../api/useAction';
import type { Page, PasswordChange, Superuser, SuperuserPatch } from '../api/types';
import { useApi, useSession } from '../auth';
import { Empty, ErrorLine, Field, Loading, Pager, RetryError, useCursorStack } from '../components/ui';
import { formatDateTime } from '../format';

export const superuserKeys = {
  all: ['platform', 'superusers'] as const,
  list: (cursor: string) => ['platform', 'superusers', cursor] as const,
};

const pageSize = 50;

/** Superusers lists the platform's superusers and lets one deactivate, reactivate or reset the password of another. */
export function Superusers() {
  const api = useApi();
  const pages = useCursorStack();
  const q = useQuery({
    queryKey: superuserKeys.list(pages.cursor),
    queryFn: ({ signal }) => api.get<Page<Superuser>>('/api/platform/superusers/', { query: { limit: pageSize, cursor: pages.cursor }, signal }),
    placeholderData: keepPreviousData,
  });
  const next = cursorOf(q.data?.next);
  return (
    <div className="page">
      <div className="page-head">
        <h1>Superusers</h1>
      </div>
      <p className="muted">A deactivated superuser is signed out at once; the last active one cannot be deactivated.</p>
      {q.isPending ? (
        <Loading label="Loading superusers…" />
      ) : q.isError && !q.data ? (
        <RetryError error={q.error} onRetry={q.refetch} />
      ) : q.data.results.length === 0 ? (
        <Empty>No superusers.</Empty>
      ) : (
        <>
          <ul className="user-list" data-testid="superusers">
            {q.data.results.map((su) => (
              <SuperuserRow key={su.id} superuser={su} />
            ))}
          </ul>
          <Pager page={pages.page} hasPrev={pages.hasPrev} hasNext={!!next} onPrev={pages.prev} onNext={() => next && pages.next(next)} busy={q.isFetching} />
        </>
      )}
    </div>
  );
}

function SuperuserRow({ superuser }: { superuser: Superuser }) {
  const api = useApi();
  const session = useSession();
  const qc = useQueryClient();
  const [su, setSu] = useState(superuser);
  const { busy, error, done, run } = useAction();
  const [resetting, setResetting] = useState(false);
  const [password, setPassword] = useState('');
  const me = su.id === session.userId;
  if (superuser.is_active !== su.is_active && !busy) setSu(superuser);

  const setActive = (active: boolean) =>
    run(async () => {
      const n = await api.send<Superuser>('PATCH', `/api/platform/superusers/${su.id}/`, { is_active: active } satisfies SuperuserPatch);
      setSu(n);
      void qc.invalidateQueries({ queryKey: superuserKeys.all });
      return active ? 'Reactivated.' : 'Deactivated.';
    });
  const setPass = async (e: FormEvent) => {
    e.preventDefault();
    await run(async () => {
      await api.send<void>('POST', `/api/platform/superusers/${su.id}/password/`, { password } satisfies PasswordChange);
      setPassword('');
      setResetting(false);
      return 'Password changed; their sessions are signed out.';
    });
  };
  const errs = resetting ? formErrors(error, ['password']) : { form: error ? describe(error) : undefined, fields: {} as Record<string, string> };
  return (
    <li className={`user${su.is_active ? '' : ' inactive'}`} data-email={su.email}>
      <div className="user-main">
        <span className="user-email">
          {su.email}
          {me ? <span className="tag">you</span> : null}
        </span>
        <span className="user-tags">
          {!su.is_active ? <span className="tag tag-off">deactivated</span> : null}
          <span className="muted small">since {formatDateTime(su.created_at)}</span>
        </span>
      </div>
      <div className="user-actions">
        <button type="button" className="btn btn-small" disabled={busy} onClick={() => void setActive(!su.is_active)}>
          {su.is_active ? 'Deactivate' : 'Reactivate'}
        </button>
        <button type="button" className="btn btn-small" disabled={busy} onClick={() => setResetting((r) => !r)} aria-expanded={resetting}>
          Reset password
        </button>
      </div>
      {resetting ? (
        <form className="user-reset" onSubmit={setPass} noValidate aria-label={`New password for ${su.email}`}>
          <Field label="New password" name="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} error={errs.fields.password} autoComplete="new-password" />
          <button type="submit" className="btn btn-primary btn-small" disabled={busy}>
            Set password
          </button>
        </form>
      ) : null}
      <ErrorLine message={errs.form} />
      {done ? <p className="small success-text" role="status">{done}</p> : null}
    </li>
  );
}
