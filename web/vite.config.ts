// Vite builds the client into dist/, which the Go API serves at / on every
// host (api/web.go). `npm run dev` serves it on :5173 and forwards the API
// and the WebSocket to the Go server, keeping the Host header so that
// demo.localhost:5173 reaches the demo tenant: set SAAS_API to point
// elsewhere than http://127.0.0.1:8080.
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

const api = process.env.SAAS_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    allowedHosts: ['.localhost'],
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/ws': { target: api, changeOrigin: false, ws: true },
    },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.{ts,tsx}'],
    reporters: ['default', './vitest.summary.ts'],
  },
});
