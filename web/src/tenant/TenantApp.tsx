import type { ReactNode } from 'react';
import { Route, Routes } from 'react-router';
import { AuditPage } from '../audit/AuditPage';
import { useAuth, useSession } from '../auth';
import { NotFound, RequireAuth } from '../components/RequireAuth';
import { Shell, type ShellLink } from '../components/Shell';
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
              <TenantShell />
            </NotificationsProvider>
          </RequireAuth>
        }
      >
        <Route index element={<Products />} />
        <Route path="products/new" element={<StaffOnly><ProductPage /></StaffOnly>} />
        <Route path="products/:id" element={<ProductPage />} />
        <Route path="admin/users" element={<StaffOnly><AdminUsers /></StaffOnly>} />
        <Route path="admin/notifications" element={<StaffOnly><AdminNotifications /></StaffOnly>} />
        <Route path="admin/audit" element={<StaffOnly><AuditPage base="/api/admin/audit/" title="Audit trail" /></StaffOnly>} />
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

/** TenantShell is the tenant's top bar: staff see the admin pages too, everyone the search and the bell. */
function TenantShell() {
  const { session } = useAuth();
  const links: ShellLink[] = [
    { to: '/', label: 'Products', end: true },
    ...(session?.staff
      ? [
          { to: '/admin/users', label: 'Users' },
          { to: '/admin/notifications', label: 'Notifications' },
          { to: '/admin/audit', label: 'Audit' },
        ]
      : []),
  ];
  return (
    <Shell
      brand={site.name || 'Workspace'}
      links={links}
      tools={
        <>
          <Search />
          <Bell />
        </>
      }
    />
  );
}
