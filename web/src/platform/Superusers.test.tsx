import { renderToStaticMarkup } from 'react-dom/server';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter } from 'react-router';
import { describe, expect, it, vi } from 'vitest';
import type { Page, Superuser } from '../api/types';
import { Superusers, superuserKeys } from './Superusers';

vi.mock('../auth', () => ({
  useApi: () => ({ get: () => new Promise(() => undefined), send: () => new Promise(() => undefined) }),
  useSession: () => ({ userId: 'root-id', staff: true, email: 'root@x.test' }),
}));

describe('Superusers', () => {
  it('lists superusers with deactivate, reactivate and password reset', () => {
    const qc = new QueryClient();
    const su = (id: string, email: string, active: boolean): Superuser => ({ id, email, is_active: active, created_at: '2026-01-02T03:04:05Z' });
    qc.setQueryData<Page<Superuser>>(superuserKeys.list(''), { results: [su('root-id', 'root@x.test', true), su('two', 'two@x.test', false)], next: null });
    const html = renderToStaticMarkup(
      <QueryClientProvider client={qc}>
        <MemoryRouter>
          <Superusers />
        </MemoryRouter>
      </QueryClientProvider>,
    );
    expect(html).toMatch(/data-email="root@x.test".*<span class="tag">you<\/span>.*>Deactivate<\/button>/);
    expect(html).toMatch(/<li class="user inactive" data-email="two@x.test">.*deactivated.*>Reactivate<\/button>/);
    expect(html.match(/Reset password/g)).toHaveLength(2);
  });
});
