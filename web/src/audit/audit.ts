// Reading an audit trail: the query keys, one page, and how an entry reads.
import type { ApiClient } from '../api/client';
import type { AuditActor, AuditBase, AuditEntry, AuditFilters, Page } from '../api/types';

export const auditKeys = {
  all: ['audit'] as const,
  page: (base: AuditBase, f: AuditFilters, cursor: string, limit: number) => ['audit', base, f, cursor, limit] as const,
};

/** fetchAuditPage reads one page of a trail, newest first. */
export function fetchAuditPage(api: ApiClient, base: AuditBase, f: AuditFilters, cursor: string, limit: number, signal?: AbortSignal) {
  return api.get<Page<AuditEntry>>(base, { query: { ...f, cursor: cursor || undefined, limit }, signal });
}

/** actorLabel names who made a change: their email, else their kind (and id). */
export function actorLabel(a: AuditActor): string {
  if (a.email) return a.email;
  if (a.kind === 'system') return 'the system';
  if (a.kind === 'cli') return 'the command line';
  return a.id ? `${a.kind} ${a.id.slice(0, 8)}` : a.kind;
}

/** valueLabel shows one changed value; null (none) as an em dash. */
export function valueLabel(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v === '' ? '(empty)' : v;
  return JSON.stringify(v);
}

/** ChangeLine is one changed field, old -> new. */
export interface ChangeLine {
  field: string;
  from: string;
  to: string;
}

/** changeLines lists an entry's changes by field name. */
export function changeLines(e: Pick<AuditEntry, 'changes'>): ChangeLine[] {
  return Object.entries(e.changes ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([field, pair]) => ({ field, from: valueLabel(pair?.[0]), to: valueLabel(pair?.[1]) }));
}

/** verbOf is the part of an action after its target type: update of product.update. */
export function verbOf(action: string): string {
  const i = action.indexOf('.');
  return (i < 0 ? action : action.slice(i + 1)).replace(/_/g, ' ');
}
