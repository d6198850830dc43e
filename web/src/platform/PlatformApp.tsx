import { Route, Routes } from 'react-router';
import { AuditPage } from '../audit/AuditPage';
import { NotFound, RequireAuth } from '../components/RequireAuth';
import { Shell, type ShellLink } from '../components/Shell';
import { SignIn } from '../components/SignIn';
import { Superusers } from './Superusers';
import { TenantDetail } from './TenantDetail';
import { Tenants } from './Tenants';

const links: ShellLink[] = [
  { to: '/', label: 'Tenants', end: true },
  { to: '/superusers', label: 'Superusers' },
  { to: '/audit', label: 'Audit' },
];

/** PlatformApp is the client on the public domain: the superusers' tenant admin. */
export function PlatformApp() {
  return (
    <Routes>
      <Route path="/signin" element={<SignIn />} />
      <Route
        element={
          <RequireAuth>
            <Shell brand="Platform admin" links={links} variant="platform" />
          </RequireAuth>
        }
      >
        <Route index element={<Tenants />} />
        <Route path="tenants/:schema" element={<TenantDetail />} />
        <Route path="superusers" element={<Superusers />} />
        <Route path="audit" element={<AuditPage base="/api/platform/audit/" title="Platform audit trail" />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}
