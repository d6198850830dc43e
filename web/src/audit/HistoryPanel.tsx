import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { cursorOf } from '../api/client';
import type { AuditBase, AuditEntry } from '../api/types';
import { useApi } from '../auth';
import { Empty, Loading, Pager, RetryError, useCursorStack } from '../components/ui';
import { formatDateTime } from '../format';
import { actorLabel, auditKeys, changeLines, fetchAuditPage, verbOf } from './audit';

const pageSize = 10;

/**
 * HistoryPanel shows the audit entries of one object, newest first: when,
 * who, what changed. A new refresh value (the object's version) reads them
 * again, so a save shows up at once.
 */
export function HistoryPanel({ base, targetType, targetId, refresh }: { base: AuditBase; targetType: string; targetId: string; refresh?: string | number }) {
  const api = useApi();
  const pages = useCursorStack(`${base}${targetType}/${targetId}`);
  const filters = { target_type: targetType, target_id: targetId };
  const q = useQuery({
    queryKey: [...auditKeys.page(base, filters, pages.cursor, pageSize), refresh ?? ''],
    queryFn: ({ signal }) => fetchAuditPage(api, base, filters, pages.cursor, pageSize, signal),
    placeholderData: keepPreviousData,
  });
  const next = cursorOf(q.data?.next);
  return (
    <section className="card history" aria-label="History">
      <h2>History</h2>
      {q.isPending ? (
        <Loading label="Loading history…" />
      ) : q.isError && !q.data ? (
        <RetryError error={q.error} onRetry={q.refetch} />
      ) : q.data.results.length === 0 ? (
        <Empty>No recorded changes.</Empty>
      ) : (
        <>
          <ol className="history-list">
            {q.data.results.map((e) => (
              <HistoryItem key={e.id} entry={e} />
            ))}
          </ol>
          <Pager page={pages.page} hasPrev={pages.hasPrev} hasNext={!!next} onPrev={pages.prev} onNext={() => next && pages.next(next)} busy={q.isFetching} />
        </>
      )}
    </section>
  );
}

/** HistoryItem is one entry: its time, its author and each changed field. */
export function HistoryItem({ entry }: { entry: AuditEntry }) {
  const lines = changeLines(entry);
  return (
    <li className="history-item" data-action={entry.action}>
      <div className="history-head">
        <span className="history-verb">{verbOf(entry.action)}</span> by <span className="history-actor">{actorLabel(entry.actor)}</span>{' '}
        <time className="muted small" dateTime={entry.at}>
          {formatDateTime(entry.at)}
        </time>
      </div>
      {lines.length > 0 ? (
        <ul className="history-changes">
          {lines.map((l) => (
            <li key={l.field}>
              <span className="mono">{l.field}</span>: {l.from} → {l.to}
            </li>
          ))}
        </ul>
      ) : null}
    </li>
  );
}
