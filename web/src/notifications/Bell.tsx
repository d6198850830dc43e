import { useEffect, useRef, useState } from 'react';
import { useNavigate } from 'react-router';
import type { Notification } from '../api/types';
import { ErrorLine, Loading, RetryError } from '../components/ui';
import { timeAgo } from '../format';
import type { LiveState } from './live';
import { useNotifications } from './NotificationsProvider';

function liveLabel(s: LiveState, now: number): string {
  switch (s.kind) {
    case 'open':
      return 'Live';
    case 'connecting':
      return s.attempt === 0 ? 'Connecting…' : 'Reconnecting…';
    case 'waiting': {
      const secs = Math.max(0, Math.ceil((s.retryAt - now) / 1000));
      return `Connection lost, retrying in ${secs} s`;
    }
    case 'stopped':
      return s.code === 1008 ? 'Live updates stopped: your account was deactivated' : 'Live updates off';
  }
}

/** Bell is the unread count and, when opened, the panel of notifications. */
export function Bell() {
  const { items, unread, unreadMore, loading, error, live, markRead, markAllRead, retry } = useNotifications();
  const [open, setOpen] = useState(false);
  const [actionError, setActionError] = useState<unknown>(null);
  const [now, setNow] = useState(() => Date.now());
  const ref = useRef<HTMLDivElement>(null);
  const navigate = useNavigate();

  useEffect(() => {
    if (!open && live.kind !== 'waiting') return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [open, live.kind]);

  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey);
    };
  }, [open]);

  const act = async (f: () => Promise<void>) => {
    setActionError(null);
    try {
      await f();
    } catch (e) {
      setActionError(e);
    }
  };

  const openItem = async (n: Notification) => {
    const id = typeof n.data.product_id === 'string' ? n.data.product_id : null;
    if (!n.read_at) await act(() => markRead(n.id));
    if (id) {
      setOpen(false);
      navigate(`/products/${id}`);
    }
  };

  const count = unread > 99 || unreadMore ? '99+' : String(unread);
  return (
    <div className="bell" ref={ref}>
      <button
        type="button"
        className="bell-button"
        aria-label={`Notifications, ${unread}${unreadMore ? '+' : ''} unread`}
        aria-expanded={open}
        aria-haspopup="dialog"
        onClick={() => setOpen((o) => !o)}
        data-testid="bell"
      >
        <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
          <path
            fill="currentColor"
            d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
          />
        </svg>
        {unread > 0 ? (
          <span className="badge" data-testid="unread-count">
            {count}
          </span>
        ) : null}
        <span className={`live-dot live-${live.kind}`} aria-hidden="true" />
      </button>
      {open ? (
        <div className="bell-panel" role="dialog" aria-label="Notifications">
          <div className="bell-head">
            <strong>Notifications</strong>
            <button type="button" className="btn btn-small" disabled={unread === 0} onClick={() => act(markAllRead)}>
              Mark all read
            </button>
          </div>
          <p className={`live-line live-line-${live.kind}`} data-testid="live-state">
            {liveLabel(live, now)}
          </p>
          {error ? <RetryError error={error} onRetry={retry} /> : null}
          <ErrorLine error={actionError} />
          {loading ? (
            <Loading label="Loading notifications…" />
          ) : items.length === 0 ? (
            <p className="empty">No notifications yet.</p>
          ) : (
            <ul className="bell-list">
              {items.map((n) => (
                <li key={n.id} className={n.read_at ? 'read' : 'unread'} data-testid="notification">
                  <button type="button" className="bell-item" onClick={() => openItem(n)}>
                    <span className="bell-title">{n.title}</span>
                    <span className="bell-time">{timeAgo(n.created_at, now)}</span>
                  </button>
                  {!n.read_at ? (
                    <button type="button" className="btn btn-small" onClick={() => act(() => markRead(n.id))} aria-label={`Mark “${n.title}” read`}>
                      Mark read
                    </button>
                  ) : null}
                </li>
              ))}
            </ul>
          )}
        </div>
      ) : null}
    </div>
  );
}
