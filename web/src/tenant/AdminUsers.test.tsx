import { renderToStaticMarkup } from 'react-dom/server';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter } from 'react-router';
import { describe, expect, it, vi } from 'vitest';
import type { Page, User } from '../api/types';
import { withQuery } from '../api/client';
import { AdminUsers, bulkSummary, userListQuery } from './AdminUsers';

vi.mock('../auth', () => ({
  useApi: () => ({ get: () => new Promise(() => undefined), send: () => new Promise(() => undefined) }),
  useSession: () => ({ userId: 'me-id', staff: true, email: 'me@x.test' }),
}));

function user(id: string, email: string, active = true, staff = false): User {
  return { id, email, is_staff: staff, is_active: active, created_at: '2026-01-02T03:04:05Z', updated_at: '2026-01-02T03:04:05Z' };
}

function render(results: User[]): string {
  const qc = new QueryClient();
  qc.setQueryData<Page<User>>(['admin', 'users', { q: '', staff: '', active: '' }, ''], { results, next: null });
  return renderToStaticMarkup(
    <QueryClientProvider client={qc}>
      <MemoryRouter>
        <AdminUsers />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

describe('AdminUsers', () => {
  it('offers a search by email, staff and active filters, and bulk activation', () => {
    const html = render([user('me-id', 'me@x.test', true, true), user('u2', 'ann@x.test', false)]);
    expect(html).toMatch(/<input type="search" aria-label="Search users by email"/);
    expect(html).toContain('<select aria-label="Staff filter">');
    expect(html).toContain('<option value="false">deactivated</option>');
    expect(html).toContain('Activate selected');
    expect(html).toContain('Deactivate selected');
    expect(html).toContain('aria-label="Select ann@x.test"');
  });

  it('lets staff edit any email, and delete anyone but themselves', () => {
    const html = render([user('me-id', 'me@x.test', true, true), user('u2', 'ann@x.test')]);
    expect(html.match(/Edit email/g)).toHaveLength(2);
    // One Delete button: the other user's, not the caller's.
    expect(html.match(/btn-danger-quiet"[^>]*>Delete<\/button>/g)).toHaveLength(1);
    expect(html).toMatch(/data-email="ann@x.test".*btn-danger-quiet"[^>]*>Delete<\/button>/);
    expect(html).toContain('Delete this user?');
  });

  it('sends only the filters that are set', () => {
    expect(withQuery('/api/admin/users/', userListQuery({ q: '  Ann ', staff: '', active: 'false' }, ''))).toBe(
      '/api/admin/users/?limit=50&q=Ann&is_active=false',
    );
  });

  it('says what a bulk change did', () => {
    expect(bulkSummary({ updated: 2, not_found: [] }, false)).toBe('Deactivated 2 users.');
    expect(bulkSummary({ updated: 1, not_found: ['x'] }, true)).toBe('Activated 1 user. 1 no longer exists.');
  });
});
