import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router';
import { useAuth } from '../auth';

/** RequireAuth shows its children signed in, else sends to /signin and back after. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { session } = useAuth();
  const location = useLocation();
  if (!session) return <Navigate to="/signin" replace state={{ from: location.pathname + location.search }} />;
  return <>{children}</>;
}

export function NotFound() {
  return (
    <div className="page">
      <h1>Not found</h1>
      <p>There is nothing at this address.</p>
    </div>
  );
}
