import type { ReactNode } from 'react';
import { NavLink, Outlet, Route, Routes } from 'react-router';
import { useAuth, useSession } from '../auth';
import { NotFound, RequireAuth } from '../components/RequireAuth';
import { SignIn } from '../components/SignIn';
import { Bell } from '../notifications/Bell';
import { NotificationsProvider } from '../notifications/NotificationsProvider';
import { site } from '../site';
import { AdminNotifications } from './AdminNotifications';
import { AdminUsers } from './AdminUsers';
import { ProductPage } from './ProductForm';
import { Products } from './Products';
import { Search } from './Search';

/** TenantApp is the client on a tenant's domain. */
export function TenantApp() {
  return (
    <Routes>
      <Route path="/signin" element={<SignIn />} />
      <Route
        element={
          <RequireAuth>
            <NotificationsProvider>
              <Shell />
            </NotificationsProvider>
          </RequireAuth>
        }
      >
        <Route index element={<Products />} />
        <Route path="products/new" element={<StaffOnly><ProductPage /></StaffOnly>} />
        <Route path="products/:id" element={<ProductPage />} />
        <Route path="admin/users" element={<StaffOnly><AdminUsers /></StaffOnly>} />
        <Route path="admin/notifications" element={<StaffOnly><AdminNotifications /></StaffOnly>} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}

function StaffOnly({ children }: { children: ReactNode }) {
  const session = useSession();
  if (!session.staff) {
    return (
      <div className="page">
        <h1>Staff only</h1>
        <p>This page is for the staff of {site.name || 'this workspace'}.</p>
      </div>
    );
  }
  return <>{children}</>;
}

function Shell() {
  const { session, signOut } = useAuth();
  return (
    <div className="app">
      <header className="topbar">
        <div className="topbar-row">
          <NavLink to="/" className="brand">
            {site.name || 'Workspace'}
          </NavLink>
          <nav className="nav" aria-label="Main">
            <NavLink to="/" end>
              Products
            </NavLink>
            {session?.staff ? (
              <>
                <NavLink to="/admin/users">Users</NavLink>
                <NavLink to="/admin/notifications">Notifications</NavLink>
              </>
            ) : null}
          </nav>
          <div className="topbar-tools">
            <Search />
            <Bell />
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
