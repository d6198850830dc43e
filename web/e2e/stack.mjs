// A private, throw-away stack for the end-to-end test, beside whatever else
// runs on this machine, started by the Go command bench/cmd/stack (the
// launcher the benchmarks and the soak use): its own database (created, then
// dropped), its own NATS server with JetStream (so its workers share no
// stream or consumer with another stack), its own redis-server, its own
// Elasticsearch index prefix (indices deleted at the end), its own port on
// 127.0.0.1, and `saas dev` serving web/dist. The command stays up until its
// standard input closes, and then removes all of it; stop() does that.
//
//   node e2e/stack.mjs        start one, print its URLs, stop it on Ctrl-C
//
// It needs the project's services (go tool task services) and Go.
// E2E_SAAS_BIN: a saas binary to run instead of building one; E2E_REDIS_DB:
// a database number of the shared Redis (empty) instead of a redis-server of
// its own; E2E_KEEP_TMP: keep the temp dir with the logs.
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
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

/**
 * startStack starts the stack command and waits for its JSON line. The
 * object it returns has stop(), which undoes all of it; call it whatever
 * happens.
 */
export async function startStack({ log = () => {} } = {}) {
  const id = randomBytes(4).toString('hex');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `saas-e2e-${id}-`));
  let child = null;
  const stack = {
    id,
    tmp,
    /** Every schema of this run starts with this, so that what is left behind can be found. */
    prefix: `e2e${id}`,
    async stop() {
      if (child) await stopCommand(child);
      child = null;
      if (!process.env.E2E_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
  try {
    if (!fs.existsSync(path.join(webDir, 'dist', 'index.html'))) throw new Error('web/dist is missing: run npm run build in web/ first');
    const env0 = await serviceEnv();

    log('building the stack command');
    const cmd = path.join(tmp, 'stack');
    await run('go', ['build', '-o', cmd, './bench/cmd/stack'], { cwd: repoRoot, maxBuffer: 1 << 24 });
    const args = ['-name', 'e2e', '-roles', 'dev', '-logs', tmp,
      '-env', 'LOG_LEVEL=info', '-env', 'LOG_FORMAT=json', '-env', `WEB_DIR=${path.join(webDir, 'dist')}`];
    if (process.env.E2E_SAAS_BIN) args.push('-saas', process.env.E2E_SAAS_BIN);
    if (process.env.E2E_REDIS_DB) args.push('-redis-db', process.env.E2E_REDIS_DB);
    child = spawn(cmd, args, { cwd: repoRoot, env: { ...process.env, ...env0 }, stdio: ['pipe', 'pipe', 'pipe'] });
    const info = await readInfo(child, log);

    const env = { ...process.env, ...info.env };
    const saas = async (...a) => {
      try {
        const { stdout } = await run(info.saas, a, { env, cwd: repoRoot });
        return stdout;
      } catch (e) {
        throw new Error(`saas ${a.join(' ')}: ${(e.stderr || e.message).trim()}`, { cause: e });
      }
    };
    const port = Number(new URL(info.url).port);
    Object.assign(stack, {
      port,
      env,
      saas,
      logFile: info.roles.dev.log,
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

/**
 * readInfo resolves with the stack command's JSON line, or rejects when it
 * exits first. Its standard error goes to log, line by line, all along.
 */
function readInfo(child, log) {
  return new Promise((resolve, reject) => {
    const errLines = [];
    readline.createInterface({ input: child.stderr }).on('line', (l) => {
      errLines.push(l);
      if (errLines.length > 30) errLines.shift();
      log(l);
    });
    const out = readline.createInterface({ input: child.stdout });
    out.once('line', (l) => {
      try {
        resolve(JSON.parse(l));
      } catch (e) {
        reject(new Error(`stack command: ${e.message}: ${l}`));
      }
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`stack command exited (${signal ?? code}) before the stack was up:\n${errLines.join('\n')}`)),
    );
  });
}

/** stopCommand closes the command's standard input and waits until it has removed the stack. */
function stopCommand(p) {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    const term = setTimeout(() => p.kill('SIGTERM'), 120_000);
    const kill = setTimeout(() => p.kill('SIGKILL'), 180_000);
    p.once('exit', () => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve();
    });
    p.stdin.end();
  });
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
