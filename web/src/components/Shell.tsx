// The frame of every signed-in page, on both sides of the product: the top
// bar (brand, main navigation, the side's own tools, the account with its
// sign-out) above the page of the current route.
import type { ReactNode } from 'react';
import { NavLink, Outlet } from 'react-router';
import { useAuth } from '../auth';

export interface ShellLink {
  to: string;
  label: string;
  /** Active on this exact path only (the home link), not below it too. */
  end?: boolean;
}

/**
 * Shell is the layout route of a signed-in side: brand is the home link's
 * text, links the main navigation, tools what comes before the account
 * (the tenant's search and bell), variant the top bar's colouring.
 */
export function Shell({ brand, links, tools, variant }: { brand: ReactNode; links: ShellLink[]; tools?: ReactNode; variant?: 'platform' }) {
  return (
    <div className="app">
      <header className={variant ? `topbar topbar-${variant}` : 'topbar'}>
        <div className="topbar-row">
          <NavLink to="/" className="brand">
            {brand}
          </NavLink>
          <nav className="nav" aria-label="Main">
            {links.map((l) => (
              <NavLink key={l.to} to={l.to} end={l.end}>
                {l.label}
              </NavLink>
            ))}
          </nav>
          <div className="topbar-tools">
            {tools}
            <Account />
          </div>
        </div>
      </header>
      <main>
        <Outlet />
      </main>
    </div>
  );
}

/** Account is who is signed in, and the way to sign out. */
function Account() {
  const { session, signOut } = useAuth();
  return (
    <div className="account">
      <span className="account-email" title={session?.email}>
        {session?.email}
      </span>
      <button type="button" className="btn btn-small" onClick={() => signOut()}>
        Sign out
      </button>
    </div>
  );
}
