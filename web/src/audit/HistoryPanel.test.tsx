import { renderToStaticMarkup } from 'react-dom/server';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { describe, expect, it, vi } from 'vitest';
import type { AuditEntry, Page } from '../api/types';
import { actorLabel, auditKeys, changeLines } from './audit';
import { HistoryPanel } from './HistoryPanel';

vi.mock('../auth', () => ({
  useApi: () => ({ get: () => new Promise(() => undefined), send: () => new Promise(() => undefined) }),
}));

function entry(id: number, e: Partial<AuditEntry>): AuditEntry {
  return {
    id,
    at: '2026-01-02T03:04:05Z',
    actor: { kind: 'user', id: '0197a000-0000-7000-8000-0000000000aa', email: 'ann@acme.test' },
    action: 'product.update',
    target: { type: 'product', id: 'p1' },
    changes: {},
    request_id: 'r1',
    ...e,
  };
}

/** render shows the panel of product p1 with the first page already loaded. */
function render(page: Page<AuditEntry>, refresh?: number): string {
  const qc = new QueryClient();
  const f = { target_type: 'product', target_id: 'p1' };
  qc.setQueryData([...auditKeys.page('/api/admin/audit/', f, '', 10), refresh ?? ''], page);
  return renderToStaticMarkup(
    <QueryClientProvider client={qc}>
      <HistoryPanel base="/api/admin/audit/" targetType="product" targetId="p1" refresh={refresh} />
    </QueryClientProvider>,
  );
}

describe('HistoryPanel', () => {
  it('shows who changed which field from what to what, newest first', () => {
    const html = render(
      {
        results: [
          entry(2, { changes: { name: ['Lamp', 'Desk lamp'], stock: [0, 3] } }),
          entry(1, { action: 'product.create', actor: { kind: 'cli', email: '' }, changes: { name: [null, 'Lamp'] } }),
        ],
        next: null,
      },
      2,
    );
    expect(html).toContain('<h2>History</h2>');
    expect(html).toMatch(/<span class="history-verb">update<\/span> by <span class="history-actor">ann@acme.test<\/span>/);
    expect(html).toContain('<span class="mono">name</span>: Lamp → Desk lamp');
    expect(html).toContain('<span class="mono">stock</span>: 0 → 3');
    expect(html).toMatch(/<span class="history-verb">create<\/span> by <span class="history-actor">the command line<\/span>/);
    expect(html).toContain('<span class="mono">name</span>: — → Lamp');
    expect(html.indexOf('data-action="product.update"')).toBeLessThan(html.indexOf('data-action="product.create"'));
    expect(html).not.toContain('Next →');
  });

  it('offers the next page when there is one', () => {
    const html = render({ results: [entry(3, {})], next: 'http://acme.localhost/api/admin/audit/?cursor=c2' });
    expect(html).toContain('Next →');
  });

  it('says when nothing was recorded', () => {
    expect(render({ results: [], next: null })).toContain('No recorded changes.');
  });
});

describe('audit labels', () => {
  it('names an actor by email, else by kind', () => {
    expect(actorLabel({ kind: 'superuser', id: 'x', email: 'root@p.test' })).toBe('root@p.test');
    expect(actorLabel({ kind: 'system' })).toBe('the system');
    expect(actorLabel({ kind: 'user', id: '0197a000-0000' })).toBe('user 0197a000');
  });

  it('lists changes by field, empty strings and nulls made visible', () => {
    expect(changeLines({ changes: { sku: ['A', null], description: [null, ''] } })).toEqual([
      { field: 'description', from: '—', to: '(empty)' },
      { field: 'sku', from: 'A', to: '—' },
    ]);
  });
});
