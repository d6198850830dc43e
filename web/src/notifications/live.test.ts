import { describe, expect, it } from 'vitest';
import type { PushNotification } from '../api/types';
import { backoffDelay, defaultBackoff, LiveNotifications, type LiveState, type SocketLike, type Timers } from './live';

/** FakeSocket is a WebSocket the test drives: it records what was asked and lets the test open, send and close. */
class FakeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onerror: SocketLike['onerror'] = null;
  onclose: SocketLike['onclose'] = null;
  closedWith: number | null = null;
  readonly url: string;
  readonly protocols: string[];

  constructor(url: string, protocols: string[]) {
    this.url = url;
    this.protocols = protocols;
  }
  get since(): string | null {
    return new URL(this.url).searchParams.get('since');
  }
  open(): void {
    this.onopen?.({});
  }
  send(n: Partial<PushNotification> | string): void {
    this.onmessage?.({ data: typeof n === 'string' ? n : JSON.stringify({ type: 'notification', ...n }) });
  }
  /** The server (or the network) closes the connection. */
  drop(code = 1006, reason = ''): void {
    this.onerror?.({});
    this.onclose?.({ code, reason });
  }
  close(code?: number): void {
    this.closedWith = code ?? 1005;
  }
}

/** FakeTimers is a clock the test moves by hand. */
class FakeTimers implements Timers {
  t = 0;
  private seq = 0;
  private pending = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + ms, fn });
    return id;
  }
  clear(h: unknown): void {
    this.pending.delete(h as number);
  }
  now(): number {
    return this.t;
  }
  /** advance runs, in time order, whatever falls due within ms. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, p]) => p.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
  }
  get count(): number {
    return this.pending.size;
  }
}

function setup(opts: { since?: number } = {}) {
  const sockets: FakeSocket[] = [];
  const got: number[] = [];
  const states: LiveState[] = [];
  const timers = new FakeTimers();
  const live = new LiveNotifications({
    url: (since) => `ws://acme.localhost/ws/notifications/?since=${since}`,
    protocols: () => ['bearer', 'tok'],
    onNotification: (n) => got.push(n.id),
    onState: (s) => states.push(s),
    since: opts.since,
    create: (url, protocols) => {
      const s = new FakeSocket(url, protocols);
      sockets.push(s);
      return s;
    },
    timers,
    random: () => 0.5, // no jitter: the waits are exact
  });
  const current = () => sockets[sockets.length - 1];
  return { live, sockets, got, states, timers, current };
}

describe('backoffDelay', () => {
  it('doubles from 500 ms up to the 30 s cap', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 4, 5, 6, 7, 10].map((a) => backoffDelay(a, defaultBackoff, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });
  it('spreads each wait by at most the jitter, never above the cap', () => {
    expect(backoffDelay(2, defaultBackoff, () => 0)).toBe(1600);
    expect(backoffDelay(2, defaultBackoff, () => 1)).toBe(2400);
    expect(backoffDelay(9, defaultBackoff, () => 1)).toBe(30000);
  });
});

describe('LiveNotifications', () => {
  it('connects at once, asking for what came after the id it was given, with the token as subprotocol', () => {
    const { live, sockets } = setup({ since: 41 });
    live.start();
    expect(sockets).toHaveLength(1);
    expect(sockets[0].since).toBe('41');
    expect(sockets[0].protocols).toEqual(['bearer', 'tok']);
  });

  it('asks for since=0 when nothing was seen yet', () => {
    const { live, current } = setup();
    live.start();
    expect(current().since).toBe('0');
  });

  it('hands each notification over once and remembers the highest id', () => {
    const { live, got, current } = setup();
    live.start();
    current().open();
    current().send({ id: 3 });
    current().send({ id: 5 });
    current().send({ id: 3 }); // sent twice
    current().send({ id: 4 }); // committed out of order: still handed over
    expect(got).toEqual([3, 5, 4]);
    expect(live.since).toBe(5);
  });

  it('ignores what is not a notification', () => {
    const { live, got, current } = setup();
    live.start();
    current().open();
    current().send('not json');
    current().send('{"type":"ping"}');
    current().send({ id: -1 });
    current().send({ id: 1.5 });
    current().send(JSON.stringify({ type: 'notification', id: '7' }));
    expect(got).toEqual([]);
    expect(live.since).toBe(0);
  });

  it('reconnects after a drop with since=<last id>, and the replay brings nothing twice', () => {
    const { live, got, sockets, timers, current } = setup();
    live.start();
    current().open();
    current().send({ id: 10 });
    current().send({ id: 11 });
    current().drop();
    expect(sockets).toHaveLength(1);
    timers.advance(499);
    expect(sockets).toHaveLength(1);
    timers.advance(1);
    expect(sockets).toHaveLength(2);
    expect(current().since).toBe('11');
    current().open();
    // The server replays from its own view; anything already seen is dropped.
    current().send({ id: 11 });
    current().send({ id: 12 });
    current().send({ id: 13 });
    expect(got).toEqual([10, 11, 12, 13]);
    expect(live.since).toBe(13);
  });

  it('waits longer after each failure in a row: 0.5, 1, 2, 4 s', () => {
    const { live, sockets, timers, current, states } = setup();
    live.start();
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      current().drop(); // refused before it opened (401, server down)
      const w = states[states.length - 1];
      expect(w.kind).toBe('waiting');
      if (w.kind === 'waiting') {
        waits.push(w.delayMs);
        expect(w.opened).toBe(false);
      }
      timers.advance(waits[i]);
    }
    expect(waits).toEqual([500, 1000, 2000, 4000]);
    expect(sockets).toHaveLength(5);
  });

  it('starts the backoff over once a connection stayed open', () => {
    const { live, timers, current, states } = setup();
    live.start();
    for (let i = 0; i < 3; i++) {
      current().drop();
      timers.advance(60_000);
    }
    expect(live.attempts).toBe(3);
    current().open();
    timers.advance(4_999);
    current().drop(); // open less than stableMs: still failing
    expect(states[states.length - 1]).toMatchObject({ kind: 'waiting', delayMs: 4000, opened: true });
    timers.advance(4000);
    current().open();
    timers.advance(5_000);
    expect(live.attempts).toBe(0);
    current().drop();
    expect(states[states.length - 1]).toMatchObject({ kind: 'waiting', delayMs: 500 });
  });

  it('stops for good when the server says the user was deactivated (1008)', () => {
    const { live, sockets, timers, current, states } = setup();
    live.start();
    current().open();
    current().drop(1008, 'user deactivated');
    timers.advance(120_000);
    expect(sockets).toHaveLength(1);
    expect(states[states.length - 1]).toEqual({ kind: 'stopped', code: 1008, reason: 'user deactivated' });
  });

  it('stop closes the socket, cancels the retry, and ignores a late event of the old socket', () => {
    const { live, sockets, got, timers, current } = setup();
    live.start();
    current().open();
    const old = current();
    live.stop();
    expect(old.closedWith).toBe(1000);
    old.send({ id: 99 });
    old.drop();
    timers.advance(120_000);
    expect(sockets).toHaveLength(1);
    expect(got).toEqual([]);
    expect(timers.count).toBe(0);
  });

  it('stop during a wait cancels the retry', () => {
    const { live, sockets, timers, current } = setup();
    live.start();
    current().drop();
    live.stop();
    timers.advance(120_000);
    expect(sockets).toHaveLength(1);
  });

  it('reconnectNow skips the wait and keeps the failure count', () => {
    const { live, sockets, timers, current } = setup();
    live.start();
    current().drop();
    sockets[0].drop(); // the same, already closed socket: ignored
    live.reconnectNow();
    expect(sockets).toHaveLength(2);
    expect(live.attempts).toBe(1);
    timers.advance(120_000);
    expect(sockets).toHaveLength(2); // the cancelled retry did not fire
    live.reconnectNow(); // connected already: nothing
    expect(sockets).toHaveLength(2);
  });

  it('ids known from the loaded list are never handed over and move since forward', () => {
    const { live, got, current } = setup();
    live.markSeen([20, 18, 19]);
    live.start();
    expect(current().since).toBe('20');
    current().open();
    current().send({ id: 19 });
    current().send({ id: 21 });
    expect(got).toEqual([21]);
  });

  it('a replay longer than the memory still hands over nothing twice within it', () => {
    const { live, got, current } = setup();
    live.start();
    current().open();
    for (let id = 1; id <= 2500; id++) current().send({ id });
    for (let id = 600; id <= 2500; id++) current().send({ id });
    expect(got).toHaveLength(2500);
  });
});
