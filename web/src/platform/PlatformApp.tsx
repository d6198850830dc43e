import { NavLink, Outlet, Route, Routes } from 'react-router';
import { useAuth } from '../auth';
import { NotFound, RequireAuth } from '../components/RequireAuth';
import { SignIn } from '../components/SignIn';
import { TenantDetail } from './TenantDetail';
import { Tenants } from './Tenants';

/** PlatformApp is the client on the public domain: the superusers' tenant admin. */
export function PlatformApp() {
  return (
    <Routes>
      <Route path="/signin" element={<SignIn />} />
      <Route
        element={
          <RequireAuth>
            <Shell />
          </RequireAuth>
        }
      >
        <Route index element={<Tenants />} />
        <Route path="tenants/:schema" element={<TenantDetail />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}

function Shell() {
  const { session, signOut } = useAuth();
  return (
    <div className="app">
      <header className="topbar topbar-platform">
        <div className="topbar-row">
          <NavLink to="/" className="brand">
            Platform admin
          </NavLink>
          <nav className="nav" aria-label="Main">
            <NavLink to="/" end>
              Tenants
            </NavLink>
          </nav>
          <div className="topbar-tools">
            <div className="account">
              <span className="account-email" title={session?.email}>
                {session?.email}
              </span>
              <button type="button" className="btn btn-small" onClick={() => signOut()}>
                Sign out
              </button>
            </div>
          </div>
        </div>
      </header>
      <main>
        <Outlet />
      </main>
    </div>
  );
}
