import { useMemo, useState } from 'react';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { cursorOf } from '../api/client';
import type { AdminNotification, Page, User } from '../api/types';
import { useApi } from '../auth';
import { Empty, ErrorLine, Loading, Pager, RetryError, useCursorStack } from '../components/ui';
import { formatDateTime } from '../format';

/** AdminNotifications is the overview of every notification of the tenant, for staff. */
export function AdminNotifications() {
  const api = useApi();
  const [unread, setUnread] = useState(false);
  const [userId, setUserId] = useState('');
  const pages = useCursorStack();

  const users = useQuery({
    queryKey: ['admin', 'users', 'all'],
    queryFn: ({ signal }) => api.get<Page<User>>('/api/admin/users/', { query: { limit: 100 }, signal }),
  });
  const emails = useMemo(() => new Map((users.data?.results ?? []).map((u) => [u.id, u.email])), [users.data]);

  const q = useQuery({
    queryKey: ['admin', 'notifications', unread, userId, pages.cursor],
    queryFn: ({ signal }) =>
      api.get<Page<AdminNotification>>('/api/admin/notifications/', {
        query: { limit: 50, unread: unread || undefined, user_id: userId || undefined, cursor: pages.cursor },
        signal,
      }),
    placeholderData: keepPreviousData,
    refetchInterval: 10_000,
  });
  const next = cursorOf(q.data?.next);

  return (
    <div className="page">
      <div className="page-head">
        <h1>Notifications</h1>
      </div>
      <div className="filters">
        <label className="check">
          <input
            type="checkbox"
            checked={unread}
            onChange={(e) => {
              setUnread(e.target.checked);
              pages.reset();
            }}
          />{' '}
          Unread only
        </label>
        <label>
          User{' '}
          <select
            value={userId}
            onChange={(e) => {
              setUserId(e.target.value);
              pages.reset();
            }}
          >
            <option value="">Everyone</option>
            {(users.data?.results ?? []).map((u) => (
              <option key={u.id} value={u.id}>
                {u.email}
              </option>
            ))}
          </select>
        </label>
      </div>
      {users.isError ? <ErrorLine error={users.error} /> : null}
      {q.isPending ? (
        <Loading label="Loading notifications…" />
      ) : q.isError && !q.data ? (
        <RetryError error={q.error} onRetry={q.refetch} />
      ) : q.data.results.length === 0 ? (
        <Empty>{unread || userId ? 'No notifications match.' : 'No notifications yet. Staff are notified when a product is created.'}</Empty>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th>When</th>
                  <th>User</th>
                  <th>Notification</th>
                  <th className="hide-narrow">State</th>
                </tr>
              </thead>
              <tbody>
                {q.data.results.map((n) => (
                  <tr key={n.id} className={n.read_at ? undefined : 'row-unread'}>
                    <td className="nowrap">{formatDateTime(n.created_at)}</td>
                    <td>{emails.get(n.user_id) ?? <span className="mono small">{n.user_id.slice(0, 8)}</span>}</td>
                    <td>{n.title}</td>
                    <td className="hide-narrow">{n.read_at ? `read ${formatDateTime(n.read_at)}` : <span className="tag">unread</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={pages.page} hasPrev={pages.hasPrev} hasNext={!!next} onPrev={pages.prev} onNext={() => next && pages.next(next)} busy={q.isFetching} />
        </>
      )}
    </div>
  );
}
