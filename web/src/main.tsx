import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { BrowserRouter } from 'react-router';
import { ApiError } from './api/errors';
import { AuthProvider } from './auth';
import { site } from './site';
import { PlatformApp } from './platform/PlatformApp';
import { TenantApp } from './tenant/TenantApp';
import './styles.css';

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // An answer of the API is final (4xx); only a lost connection or a
      // dependency down is worth another try.
      retry: (count, err) => count < 2 && err instanceof ApiError && (err.status === 0 || err.status === 503),
      staleTime: 5_000,
      refetchOnWindowFocus: true,
    },
  },
});

document.title = site.kind === 'platform' ? 'Platform admin' : site.name || 'saas';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <BrowserRouter>
        <AuthProvider>{site.kind === 'platform' ? <PlatformApp /> : <TenantApp />}</AuthProvider>
      </BrowserRouter>
    </QueryClientProvider>
  </StrictMode>,
);
