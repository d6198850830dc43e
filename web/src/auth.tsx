// The signed-in session: the bearer token and what the client reads from
// it, kept in localStorage per origin (so per tenant domain), shared by the
// tabs of the browser and dropped when it expires or the API answers 401.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { ApiClient } from './api/client';
import type { Token, TokenRequest } from './api/types';
import { claimsOf } from './jwt';
import { site } from './site';

export interface Session {
  token: string;
  expiresAt: string;
  email: string;
  /** The user's (or superuser's) id, from the token. */
  userId: string;
  /** Tenant staff, as the token was issued; the server checks the current flag. */
  staff: boolean;
}

interface AuthValue {
  session: Session | null;
  api: ApiClient;
  /** Why the last session ended, when it was not the user's choice. */
  notice: string | null;
  signIn(email: string, password: string): Promise<void>;
  signOut(notice?: string): void;
}

const storageKey = `saas.session.${site.kind}`;
const tokenPath = site.kind === 'platform' ? '/api/platform/auth/token/' : '/api/auth/token/';

function load(): Session | null {
  try {
    const raw = localStorage.getItem(storageKey);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    if (!s.token || new Date(s.expiresAt).getTime() <= Date.now()) return null;
    return s;
  } catch {
    return null;
  }
}

function save(s: Session | null): void {
  try {
    if (s) localStorage.setItem(storageKey, JSON.stringify(s));
    else localStorage.removeItem(storageKey);
  } catch {
    // private mode: the session lives in memory only
  }
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [session, setSession] = useState<Session | null>(load);
  const [notice, setNotice] = useState<string | null>(null);
  // The session as of now, for what runs outside rendering (the API
  // client's token, signOut): written together with every setSession.
  const ref = useRef(session);

  const signOut = useCallback(
    (why?: string) => {
      if (!ref.current) return;
      ref.current = null;
      save(null);
      setSession(null);
      setNotice(why ?? null);
      queryClient.clear();
    },
    [queryClient],
  );

  const api = useMemo(
    () =>
      // The token is read from the ref when a request is sent, never while
      // rendering; the rule cannot tell, as the closure goes to a constructor.
      // eslint-disable-next-line react-hooks/refs
      new ApiClient({
        token: () => ref.current?.token ?? null,
        onUnauthorized: () => signOut('Your session has ended. Sign in again.'),
      }),
    [signOut],
  );

  const signIn = useCallback(
    async (email: string, password: string) => {
      const t = await api.send<Token>('POST', tokenPath, { email, password } satisfies TokenRequest, { anonymous: true });
      const c = claimsOf(t.token);
      const s: Session = { token: t.token, expiresAt: t.expires_at, email: email.trim().toLowerCase(), userId: c.sub ?? '', staff: !!c.staff };
      queryClient.clear();
      save(s);
      ref.current = s;
      setNotice(null);
      setSession(s);
    },
    [api, queryClient],
  );

  // Expiry: end the session when the token does.
  useEffect(() => {
    if (!session) return;
    const ms = new Date(session.expiresAt).getTime() - Date.now();
    const t = setTimeout(() => signOut('Your session has expired. Sign in again.'), Math.max(0, Math.min(ms, 2_147_000_000)));
    return () => clearTimeout(t);
  }, [session, signOut]);

  // Another tab signed in or out.
  useEffect(() => {
    const onStorage = (e: StorageEvent) => {
      if (e.key !== storageKey) return;
      const s = load();
      ref.current = s;
      setSession(s);
      if (!s) queryClient.clear();
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
  }, [queryClient]);

  const value = useMemo(() => ({ session, api, notice, signIn, signOut }), [session, api, notice, signIn, signOut]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const v = useContext(AuthContext);
  if (!v) throw new Error('useAuth outside AuthProvider');
  return v;
}

/** useApi returns the API client of the session. */
export function useApi(): ApiClient {
  return useAuth().api;
}

/** useSession returns the session of a page that is only shown signed in. */
export function useSession(): Session {
  const s = useAuth().session;
  if (!s) throw new Error('useSession while signed out');
  return s;
}
