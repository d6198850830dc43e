import type { ReactElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { MemoryRouter, Route, Routes } from 'react-router';
import { describe, expect, it, vi } from 'vitest';
import { Shell, type ShellLink } from './Shell';

vi.mock('../auth', () => ({
  useAuth: () => ({ session: { email: 'ann@example.com' }, signOut: () => undefined }),
}));

function render(path: string, shell: ReactElement): string {
  return renderToStaticMarkup(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route element={shell}>
          <Route path="*" element={<p>the page</p>} />
        </Route>
      </Routes>
    </MemoryRouter>,
  );
}

const links: ShellLink[] = [
  { to: '/', label: 'Products', end: true },
  { to: '/admin/users', label: 'Users' },
];

describe('Shell', () => {
  it('shows the brand, the main navigation, the tools, then the account with its sign-out, above the page', () => {
    const html = render('/admin/users/new', <Shell brand="Acme" links={links} tools={<span>tools</span>} />);
    expect(html).toContain('<header class="topbar">');
    expect(html).toContain('<a class="brand" href="/" data-discover="true">Acme</a>');
    expect(html).toContain('<nav class="nav" aria-label="Main">');
    expect(html).toMatch(/<div class="topbar-tools"><span>tools<\/span><div class="account">/);
    expect(html).toContain('<span class="account-email" title="ann@example.com">ann@example.com</span>');
    expect(html).toContain('<button type="button" class="btn btn-small">Sign out</button>');
    expect(html).toMatch(/<\/header><main><p>the page<\/p><\/main>/);
  });

  it('marks the link of the current page, and the home link on the home page only', () => {
    const below = render('/admin/users/new', <Shell brand="Acme" links={links} />);
    expect(below).toContain('<a class="" href="/" data-discover="true">Products</a>');
    expect(below).toContain('<a aria-current="page" class="active" href="/admin/users" data-discover="true">Users</a>');
    const home = render('/', <Shell brand="Acme" links={links} />);
    expect(home).toContain('<a aria-current="page" class="active" href="/" data-discover="true">Products</a>');
  });

  it('colours the platform side its own way, which has no tools', () => {
    const html = render('/', <Shell brand="Platform admin" links={[{ to: '/', label: 'Tenants', end: true }]} variant="platform" />);
    expect(html).toContain('<header class="topbar topbar-platform">');
    expect(html).toContain('<div class="topbar-tools"><div class="account">');
  });
});
