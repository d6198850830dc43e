import { useState, type FormEvent } from 'react';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { cursorOf } from '../api/client';
import type { AuditBase, AuditFilters } from '../api/types';
import { useApi } from '../auth';
import { Empty, Field, Loading, Pager, RetryError, useCursorStack } from '../components/ui';
import { formatDateTime } from '../format';
import { actorLabel, auditKeys, changeLines, fetchAuditPage } from './audit';

const pageSize = 50;
const empty: AuditFilters = { actor: '', action: '', target_type: '', target_id: '' };

/** AuditPage lists a whole trail, newest first, with its filters and pages. */
export function AuditPage({ base, title }: { base: AuditBase; title: string }) {
  const api = useApi();
  const [draft, setDraft] = useState<AuditFilters>(empty);
  const [filters, setFilters] = useState<AuditFilters>(empty);
  const pages = useCursorStack(JSON.stringify(filters));
  const q = useQuery({
    queryKey: auditKeys.page(base, filters, pages.cursor, pageSize),
    queryFn: ({ signal }) => fetchAuditPage(api, base, filters, pages.cursor, pageSize, signal),
    placeholderData: keepPreviousData,
  });
  const next = cursorOf(q.data?.next);
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setFilters(Object.fromEntries(Object.entries(draft).map(([k, v]) => [k, (v ?? '').trim()])) as AuditFilters);
  };
  const set = (k: keyof AuditFilters) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [k]: e.target.value }));
  return (
    <div className="page">
      <div className="page-head">
        <h1>{title}</h1>
      </div>
      <form className="filters" onSubmit={apply} aria-label="Filter the audit trail">
        <Field label="Action" name="action" value={draft.action ?? ''} onChange={set('action')} placeholder="product.update" />
        <Field label="Target type" name="target_type" value={draft.target_type ?? ''} onChange={set('target_type')} placeholder="product" />
        <Field label="Target id" name="target_id" value={draft.target_id ?? ''} onChange={set('target_id')} />
        <Field label="Actor id" name="actor" value={draft.actor ?? ''} onChange={set('actor')} />
        <button type="submit" className="btn">
          Filter
        </button>
      </form>
      {q.isPending ? (
        <Loading label="Loading the audit trail…" />
      ) : q.isError && !q.data ? (
        <RetryError error={q.error} onRetry={q.refetch} />
      ) : q.data.results.length === 0 ? (
        <Empty>No entries match.</Empty>
      ) : (
        <>
          <div className="table-wrap">
            <table className="table">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Who</th>
                  <th>Action</th>
                  <th>Target</th>
                  <th className="hide-narrow">Changes</th>
                </tr>
              </thead>
              <tbody>
                {q.data.results.map((e) => (
                  <tr key={e.id}>
                    <td className="nowrap">{formatDateTime(e.at)}</td>
                    <td>{actorLabel(e.actor)}</td>
                    <td className="mono">{e.action}</td>
                    <td>
                      {e.target.type} <span className="mono small">{e.target.id}</span>
                    </td>
                    <td className="hide-narrow small">
                      {changeLines(e)
                        .map((l) => `${l.field}: ${l.from} → ${l.to}`)
                        .join('; ')}
                    </td>
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
