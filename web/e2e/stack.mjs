// A private, throw-away stack for the end-to-end test, beside whatever else
// runs on this machine: its own database (created, then dropped), its own
// NATS server with JetStream (so its workers share no stream or consumer
// with another stack), its own Elasticsearch index prefix (indices deleted
// at the end), its own Redis database number, its own port on 127.0.0.1,
// and `saas dev` serving web/dist.
//
//   node e2e/stack.mjs        start one, print its URLs, stop it on Ctrl-C
//
// It needs the project's services (go tool task services), Go, psql and
// redis-cli (from the Debian packages the services script installs).
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(webDir, '..');

/** freePort asks the kernel for a free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** serviceEnv reads the services' URLs from scripts/services.sh env. */
async function serviceEnv() {
  const { stdout } = await run('bash', [path.join(repoRoot, 'scripts/services.sh'), 'env'], { cwd: repoRoot });
  const env = {};
  for (const m of stdout.matchAll(/^export ([A-Z_]+)='([^']*)'$/gm)) env[m[1]] = m[2];
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'NATS_URL', 'ELASTICSEARCH_URL']) {
    if (process.env[k]) env[k] = process.env[k];
    if (!env[k]) throw new Error(`${k} unknown: start the services first (go tool task services)`);
  }
  return env;
}

function withDatabase(url, name) {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

function withRedisDB(url, db) {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** get sends GET path to 127.0.0.1:port with the Host header host. */
export function get(port, host, p) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, headers: { Host: host }, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function waitFor(what, f, ms, isAlive = () => true) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    if (!isAlive()) throw new Error(`${what}: the process exited`);
    try {
      if (await f()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not ready after ${ms} ms${last ? ` (${last.message})` : ''}`);
}

function findNatsServer() {
  const dirs = [process.env.SERVICES_DIR ?? '/var/lib/saas-services', ...(process.env.PATH ?? '').split(':')];
  for (const d of dirs) {
    for (const p of [path.join(d, 'bin', 'nats-server'), path.join(d, 'nats-server')]) {
      if (fs.existsSync(p)) return p;
    }
  }
  return null;
}

/**
 * startStack builds the binary, prepares a fresh database and starts the
 * stack. The object it returns has stop(), which undoes all of it; call it
 * whatever happens.
 */
export async function startStack({ log = () => {} } = {}) {
  const id = randomBytes(4).toString('hex');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `saas-e2e-${id}-`));
  const procs = [];
  const undo = [];
  const stack = {
    id,
    tmp,
    /** Every schema of this run starts with this, so that what is left behind can be found. */
    prefix: `e2e${id}`,
    async stop() {
      for (const p of procs.reverse()) await stopProcess(p);
      for (const f of undo.reverse()) {
        try {
          await f();
        } catch (e) {
          log(`cleanup: ${e.message}`);
        }
      }
      if (!process.env.E2E_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
  try {
    const env0 = await serviceEnv();

    const bin = process.env.E2E_SAAS_BIN || path.join(tmp, 'saas');
    if (!process.env.E2E_SAAS_BIN) {
      log('building the saas binary');
      await run('go', ['build', '-o', bin, './cmd/saas'], { cwd: repoRoot, maxBuffer: 1 << 24 });
    }
    if (!fs.existsSync(path.join(webDir, 'dist', 'index.html'))) throw new Error('web/dist is missing: run npm run build in web/ first');

    // A database of our own.
    const db = `e2e_${id}`;
    await run('psql', [env0.DATABASE_URL, '-qAtc', `CREATE DATABASE "${db}"`]);
    undo.push(() => run('psql', [env0.DATABASE_URL, '-qAtc', `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`]));

    // A NATS server of our own.
    const nats = findNatsServer();
    if (!nats) throw new Error('nats-server not found: start the services first (go tool task services)');
    const natsPort = await freePort();
    const natsProc = spawnLogged(nats, ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', path.join(tmp, 'nats')], {}, path.join(tmp, 'nats.log'));
    procs.push(natsProc);
    await waitFor('nats-server', () => canConnect(natsPort), 10_000, () => natsProc.exitCode === null);

    const redisDB = process.env.E2E_REDIS_DB ?? '12';
    const esPrefix = `e2e_${id}`;
    const port = await freePort();
    const env = {
      ...process.env,
      ...env0,
      APP_ENV: 'development',
      DATABASE_URL: withDatabase(env0.DATABASE_URL, db),
      NATS_URL: `nats://127.0.0.1:${natsPort}`,
      REDIS_URL: withRedisDB(env0.REDIS_URL, redisDB),
      ELASTICSEARCH_INDEX_PREFIX: esPrefix,
      HTTP_ADDR: `127.0.0.1:${port}`,
      PUBLIC_DOMAIN: 'localhost',
      WEB_DIR: path.join(webDir, 'dist'),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
    };
    undo.push(() => deleteIndices(env0.ELASTICSEARCH_URL, esPrefix));
    undo.push(() => dropRedisKeys(env.REDIS_URL, stack.prefix));

    const saas = async (...args) => {
      try {
        const { stdout } = await run(bin, args, { env, cwd: repoRoot });
        return stdout;
      } catch (e) {
        throw new Error(`saas ${args.join(' ')}: ${(e.stderr || e.message).trim()}`, { cause: e });
      }
    };
    await saas('migrate', '--shared');

    const devProc = spawnLogged(bin, ['dev'], env, path.join(tmp, 'saas.log'));
    procs.push(devProc);
    await waitFor('saas dev', async () => (await get(port, 'localhost', '/health/')).status === 200, 60_000, () => devProc.exitCode === null);

    Object.assign(stack, {
      port,
      env,
      saas,
      logFile: path.join(tmp, 'saas.log'),
      /** The URL of a host on this stack. */
      url: (host, p = '/') => `http://${host}:${port}${p}`,
      async createTenant(schema, name, domain) {
        await saas('tenant', 'create', '--schema', schema, '--name', name, '--domain', domain);
      },
      async createUser(schema, email, password, staff = false) {
        await saas('user', 'create', '--tenant', schema, '--email', email, '--password', password, ...(staff ? ['--staff'] : []));
      },
      async createSuperuser(email, password) {
        await saas('superuser', 'create', '--email', email, '--password', password);
      },
    });
    return stack;
  } catch (e) {
    await stack.stop();
    throw e;
  }
}

function spawnLogged(cmd, args, env, logFile) {
  const out = fs.openSync(logFile, 'a');
  const p = spawn(cmd, args, { env: Object.keys(env).length ? env : process.env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  p.on('error', () => {});
  return p;
}

function stopProcess(p) {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function deleteIndices(esURL, prefix) {
  const res = await fetch(`${esURL}/_cat/indices/${prefix}_*?format=json&h=index&expand_wildcards=all`);
  if (!res.ok) return;
  for (const { index } of await res.json()) {
    if (index.startsWith(`${prefix}_`)) await fetch(`${esURL}/${encodeURIComponent(index)}`, { method: 'DELETE' });
  }
}

async function dropRedisKeys(redisURL, schemaPrefix) {
  const u = new URL(redisURL);
  const args = ['-h', u.hostname, '-p', u.port || '6379', '-n', u.pathname.slice(1) || '0'];
  for (const pattern of [`${schemaPrefix}*`, 'public:login:*']) {
    const { stdout } = await run('redis-cli', [...args, '--scan', '--pattern', pattern]);
    const keys = stdout.split('\n').filter(Boolean);
    for (let i = 0; i < keys.length; i += 200) await run('redis-cli', [...args, 'DEL', ...keys.slice(i, i + 200)]);
  }
}

// Run on its own: start a stack with a demo-like tenant and wait.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const stack = await startStack({ log: (m) => console.error(m) });
  const schema = `${stack.prefix}_demo`;
  const domain = `${stack.prefix}-demo.localhost`;
  await stack.createTenant(schema, 'Demo', domain);
  await stack.createUser(schema, 'staff@demo.test', 'demo-password', true);
  await stack.createUser(schema, 'user@demo.test', 'demo-password', false);
  await stack.createSuperuser(`root-${stack.id}@platform.test`, 'root-password');
  console.log(`tenant:   ${stack.url(domain)}  staff@demo.test / demo-password (user@demo.test: not staff)`);
  console.log(`platform: ${stack.url('localhost')}  root-${stack.id}@platform.test / root-password`);
  console.log(`logs:     ${stack.logFile}`);
  const stop = async () => {
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
