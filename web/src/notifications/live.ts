// LiveNotifications keeps one WebSocket to GET /ws/notifications/ open for
// as long as it runs, and hands every notification over exactly once.
//
// - Each connection asks for ?since=<the highest id seen so far>, so the
//   server first replays what was missed while disconnected, then goes live.
// - Ids are remembered (the last 2,000), so a replayed or repeated one is
//   never handed over twice.
// - A connection that closes is retried after an exponential backoff with
//   jitter (0.5 s, 1 s, 2 s, ... up to 30 s); the count of failures starts
//   over once a connection has stayed open for stableMs.
// - A close with 1008 (policy violation: the user was deactivated) is final.
//
// Everything it touches from the outside (the WebSocket class, timers,
// randomness) can be replaced, which is how it is tested.
import type { PushNotification } from '../api/types';

/** The part of a browser WebSocket this uses. */
export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string, protocols: string[]) => SocketLike;

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
  now(): number;
}

export interface Backoff {
  /** The first wait, in ms. */
  initialMs: number;
  /** The longest wait, in ms. */
  maxMs: number;
  /** Each failure in a row multiplies the wait by this. */
  factor: number;
  /** Up to this share of the wait is added or taken off at random (0.2: ±20 %). */
  jitter: number;
  /** A connection open this long resets the failure count. */
  stableMs: number;
}

export const defaultBackoff: Backoff = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2, stableMs: 5_000 };

export type LiveState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'open' }
  | { kind: 'waiting'; attempt: number; delayMs: number; retryAt: number; code: number; opened: boolean }
  | { kind: 'stopped'; code?: number; reason?: string };

export interface LiveOptions {
  /** The URL to connect to, asking for what came after since. */
  url: (since: number) => string;
  /** WebSocket subprotocols of each attempt (they may carry the token). */
  protocols?: () => string[];
  onNotification: (n: PushNotification) => void;
  onState?: (s: LiveState) => void;
  /** The highest id already known (from the list the page loaded). */
  since?: number;
  create?: SocketFactory;
  timers?: Timers;
  random?: () => number;
  backoff?: Partial<Backoff>;
}

/** backoffDelay is the wait before retry number attempt (0 for the first). */
export function backoffDelay(attempt: number, b: Backoff, random: () => number): number {
  const base = Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, attempt));
  const spread = base * b.jitter * (2 * random() - 1);
  return Math.max(0, Math.min(b.maxMs, Math.round(base + spread)));
}

/** CloseDeactivated is the close code after which retrying cannot help. */
export const CloseDeactivated = 1008;

const seenCap = 2000;

const browserTimers: Timers = {
  set: (fn, ms) => globalThis.setTimeout(fn, ms),
  clear: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

export class LiveNotifications {
  private readonly o: LiveOptions;
  private readonly b: Backoff;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly create: SocketFactory;

  private ws: SocketLike | null = null;
  private opened = false;
  private running = false;
  private failures = 0;
  private retryTimer: unknown = null;
  private stableTimer: unknown = null;
  private last: number;
  private readonly seen = new Set<number>();
  private readonly order: number[] = [];

  constructor(o: LiveOptions) {
    this.o = o;
    this.b = { ...defaultBackoff, ...o.backoff };
    this.timers = o.timers ?? browserTimers;
    this.random = o.random ?? Math.random;
    this.create = o.create ?? ((url, protocols) => new WebSocket(url, protocols) as unknown as SocketLike);
    this.last = Math.max(0, o.since ?? 0);
  }

  /** The highest notification id seen: what the next connection asks to follow. */
  get since(): number {
    return this.last;
  }

  /** How many attempts in a row have failed. */
  get attempts(): number {
    return this.failures;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /** stop closes the connection and cancels any retry; it may be started again. */
  stop(reason = 'stopped'): void {
    this.running = false;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close(1000, reason);
      } catch {
        // already closed
      }
    }
    this.o.onState?.({ kind: 'stopped', reason });
  }

  /** reconnectNow skips the wait of a pending retry (the browser is back online). */
  reconnectNow(): void {
    if (!this.running || this.ws) return;
    this.clearTimers();
    this.connect();
  }

  /** markSeen records ids known from elsewhere (the REST list): never handed over, and since moves past them. */
  markSeen(ids: Iterable<number>): void {
    for (const id of ids) this.remember(id);
  }

  private remember(id: number): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    this.order.push(id);
    if (this.order.length > seenCap) this.seen.delete(this.order.shift()!);
    if (id > this.last) this.last = id;
    return true;
  }

  private clearTimers(): void {
    if (this.retryTimer !== null) this.timers.clear(this.retryTimer);
    if (this.stableTimer !== null) this.timers.clear(this.stableTimer);
    this.retryTimer = this.stableTimer = null;
  }

  private connect(): void {
    this.retryTimer = null;
    this.opened = false;
    this.o.onState?.({ kind: 'connecting', attempt: this.failures });
    let ws: SocketLike;
    try {
      ws = this.create(this.o.url(this.last), this.o.protocols?.() ?? []);
    } catch {
      this.retry(1006);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.opened = true;
      this.o.onState?.({ kind: 'open' });
      this.stableTimer = this.timers.set(() => {
        this.stableTimer = null;
        this.failures = 0;
      }, this.b.stableMs);
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.receive(ev.data);
    };
    ws.onerror = () => {
      // A close event always follows; the retry is decided there.
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      if (this.stableTimer !== null) this.timers.clear(this.stableTimer);
      this.stableTimer = null;
      if (!this.running) return;
      if (ev.code === CloseDeactivated) {
        this.running = false;
        this.o.onState?.({ kind: 'stopped', code: ev.code, reason: ev.reason || 'refused' });
        return;
      }
      this.retry(ev.code);
    };
  }

  private retry(code: number): void {
    const delayMs = backoffDelay(this.failures, this.b, this.random);
    this.failures++;
    this.o.onState?.({
      kind: 'waiting',
      attempt: this.failures,
      delayMs,
      retryAt: this.timers.now() + delayMs,
      code,
      opened: this.opened,
    });
    this.retryTimer = this.timers.set(() => this.connect(), delayMs);
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') return;
    let m: unknown;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof m !== 'object' || m === null) return;
    const n = m as PushNotification;
    if (n.type !== 'notification' || !Number.isSafeInteger(n.id) || n.id <= 0) return;
    if (!this.remember(n.id)) return; // replayed after a reconnect, or sent twice
    this.o.onNotification(n);
  }
}
