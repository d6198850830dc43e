// The one way the client talks to the API: same origin, JSON in and out,
// the bearer token of the session, and every failure as an ApiError.
import { ApiError, apiErrorFrom, networkError } from './errors';

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as it is, with its content type, instead of a JSON body. */
  raw?: { body: Blob | string; type: string };
  /** Query parameters; undefined and '' values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Send no token (sign-in). */
  anonymous?: boolean;
}

export interface Answer<T> {
  data: T;
  status: number;
  headers: Headers;
}

export interface ApiClientOptions {
  /** The session's token, read on every request. */
  token: () => string | null;
  /** Called when an authenticated request is refused with 401: the session is over. */
  onUnauthorized?: (err: ApiError) => void;
  fetch?: typeof fetch;
}

/** withQuery appends the defined, non-empty parameters to path. */
export function withQuery(path: string, query?: RequestOptions['query']): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

/** cursorOf returns the cursor of a page's `next` URL, or null on the last page. */
export function cursorOf(next: string | null | undefined): string | null {
  if (!next) return null;
  try {
    return new URL(next, 'http://x').searchParams.get('cursor');
  } catch {
    return null;
  }
}

export class ApiClient {
  private readonly opts: ApiClientOptions;

  constructor(opts: ApiClientOptions) {
    this.opts = opts;
  }

  async request<T>(path: string, o: RequestOptions = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { Accept: 'application/json', ...o.headers };
    const token = o.anonymous ? null : this.opts.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    let body: string | Blob | undefined;
    if (o.raw) {
      headers['Content-Type'] = o.raw.type;
      body = o.raw.body;
    } else if (o.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(o.body);
    }
    const f = this.opts.fetch ?? fetch;
    let res: Response;
    try {
      res = await f(withQuery(path, o.query), { method: o.method ?? 'GET', headers, body, signal: o.signal, cache: 'no-store' });
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw networkError();
    }
    const text = res.status === 204 ? '' : await res.text().catch(() => '');
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!res.ok) {
      const err = apiErrorFrom(res.status, parsed, res.headers);
      if (res.status === 401 && token) this.opts.onUnauthorized?.(err);
      throw err;
    }
    return { data: parsed as T, status: res.status, headers: res.headers };
  }

  /** download reads a file the API sends (not JSON), with the session's token; errors as request's. */
  async download(path: string, signal?: AbortSignal): Promise<Blob> {
    const headers: Record<string, string> = {};
    const token = this.opts.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    const f = this.opts.fetch ?? fetch;
    let res: Response;
    try {
      res = await f(path, { headers, signal, cache: 'no-store' });
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw networkError();
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      const err = apiErrorFrom(res.status, parsed, res.headers);
      if (res.status === 401 && token) this.opts.onUnauthorized?.(err);
      throw err;
    }
    try {
      return await res.blob();
    } catch {
      // The server ends a failed export early: the transfer breaks.
      throw networkError();
    }
  }

  async get<T>(path: string, o: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<T> {
    return (await this.request<T>(path, o)).data;
  }

  async send<T>(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, o: RequestOptions = {}): Promise<T> {
    return (await this.request<T>(path, { ...o, method, body })).data;
  }
}
