// The signed-in user's notifications: the latest page from the API, then
// every new one live from the WebSocket (LiveNotifications), with the
// unread count the bell shows.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Notification, Page, PushNotification } from '../api/types';
import { useAuth } from '../auth';
import { LiveNotifications, type LiveState } from './live';

const pageSize = 30;
const unreadPageSize = 100;

interface NotificationsValue {
  /** Newest first. */
  items: Notification[];
  unread: number;
  /** More unread than counted (over unreadPageSize). */
  unreadMore: boolean;
  loading: boolean;
  error: unknown;
  live: LiveState;
  markRead(id: number): Promise<void>;
  markAllRead(): Promise<void>;
  retry(): void;
}

const Ctx = createContext<NotificationsValue | null>(null);

function fromPush(n: PushNotification): Notification {
  return { id: n.id, event_id: n.event_id, kind: n.kind, title: n.title, data: n.data ?? {}, read_at: null, created_at: n.created_at };
}

export function NotificationsProvider({ children }: { children: ReactNode }) {
  const { api, session } = useAuth();
  const queryClient = useQueryClient();
  const [byId, setById] = useState<Map<number, Notification>>(new Map());
  const [unreadMore, setUnreadMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState<LiveState>({ kind: 'connecting', attempt: 0 });
  const [generation, setGeneration] = useState(0);
  const token = session?.token ?? '';
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    if (!token) return;
    let cancelled = false;
    let socket: LiveNotifications | null = null;
    const ctrl = new AbortController();

    const add = (ns: Notification[]) =>
      setById((prev) => {
        const next = new Map(prev);
        for (const n of ns) {
          const old = next.get(n.id);
          next.set(n.id, old && old.read_at && !n.read_at ? old : n);
        }
        return next;
      });

    // A new product arrived: lists and searches are worth reading again,
    // once the burst is over.
    const refreshProducts = () => {
      if (refreshTimer.current) clearTimeout(refreshTimer.current);
      refreshTimer.current = setTimeout(() => {
        void queryClient.invalidateQueries({ queryKey: ['products'] });
        void queryClient.invalidateQueries({ queryKey: ['search'] });
      }, 400);
    };

    (async () => {
      setLoading(true);
      setError(null);
      let since = 0;
      try {
        const [latest, unread] = await Promise.all([
          api.get<Page<Notification>>('/api/notifications/', { query: { limit: pageSize }, signal: ctrl.signal }),
          api.get<Page<Notification>>('/api/notifications/', { query: { limit: unreadPageSize, unread: true }, signal: ctrl.signal }),
        ]);
        if (cancelled) return;
        const all = [...latest.results, ...unread.results];
        setById(new Map(all.map((n) => [n.id, n])));
        setUnreadMore(unread.next !== null);
        since = all.reduce((m, n) => Math.max(m, n.id), 0);
      } catch (err) {
        if (cancelled) return;
        setError(err);
        // Go live anyway: since=0 replays what the list would have shown.
      } finally {
        if (!cancelled) setLoading(false);
      }
      if (cancelled) return;
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      socket = new LiveNotifications({
        url: (s) => `${proto}//${location.host}/ws/notifications/?since=${s}`,
        // The token travels as a subprotocol, never in the URL (logs).
        protocols: () => ['bearer', token],
        since,
        onNotification: (n) => {
          add([fromPush(n)]);
          if (n.kind.startsWith('product.')) refreshProducts();
        },
        onState: (s) => {
          setLive(s);
          // Refused before it opened: maybe the session is over. A plain
          // request says so (401 signs out); anything else, keep trying.
          if (s.kind === 'waiting' && !s.opened && s.attempt >= 2) {
            void api.get('/api/notifications/', { query: { limit: 1 } }).catch(() => undefined);
          }
        },
      });
      socket.start();
    })();

    const online = () => socket?.reconnectNow();
    window.addEventListener('online', online);
    return () => {
      cancelled = true;
      ctrl.abort();
      window.removeEventListener('online', online);
      socket?.stop('signed out');
      if (refreshTimer.current) clearTimeout(refreshTimer.current);
    };
  }, [api, token, queryClient, generation]);

  const markRead = useCallback(
    async (id: number) => {
      const n = await api.send<Notification>('POST', `/api/notifications/${id}/read/`);
      setById((prev) => new Map(prev).set(n.id, n));
    },
    [api],
  );

  const items = useMemo(() => [...byId.values()].sort((a, b) => b.id - a.id), [byId]);
  const unread = useMemo(() => items.filter((n) => !n.read_at).length, [items]);

  const markAllRead = useCallback(async () => {
    for (const n of items.filter((x) => !x.read_at)) await markRead(n.id);
    if (unreadMore) setGeneration((g) => g + 1); // read the next ones in
  }, [items, markRead, unreadMore]);

  const value = useMemo(
    () => ({ items, unread, unreadMore, loading, error, live, markRead, markAllRead, retry: () => setGeneration((g) => g + 1) }),
    [items, unread, unreadMore, loading, error, live, markRead, markAllRead],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useNotifications(): NotificationsValue {
  const v = useContext(Ctx);
  if (!v) throw new Error('useNotifications outside NotificationsProvider');
  return v;
}
