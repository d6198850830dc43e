// Generates src/api/schema.gen.ts from api/openapi.json, the server's
// OpenAPI document, with openapi-typescript (npm run gen:types).
//
// With --check (npm run check:types, run by `go tool task web:test`) it
// generates into a temporary file instead and fails when that differs from
// the committed one: api/openapi.json changed and the client's types did not.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = fileURLToPath(new URL('..', import.meta.url));
const input = join(web, '..', 'api', 'openapi.json');
const output = join(web, 'src', 'api', 'schema.gen.ts');
// An object schema without properties (a notification's data) is any JSON
// object, not an empty one; a field with a default (is_staff, is_primary)
// may be left out of a request.
const options = ['--empty-objects-unknown', '--default-non-nullable', 'false'];

const cli = join(dirname(createRequire(import.meta.url).resolve('openapi-typescript/package.json')), 'bin', 'cli.js');

function generate(to, quiet) {
  const r = spawnSync(process.execPath, [cli, input, ...options, '--output', to], {
    cwd: web,
    stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit'],
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`openapi-typescript failed (exit ${r.status ?? r.signal})`);
}

/** firstDifference returns the first line (1-based) where a and b differ, with both versions. */
function firstDifference(a, b) {
  const al = a.split('\n');
  const bl = b.split('\n');
  for (let i = 0; i < Math.max(al.length, bl.length); i++) {
    if (al[i] !== bl[i]) return { line: i + 1, committed: al[i] ?? '(end of file)', generated: bl[i] ?? '(end of file)' };
  }
  return null;
}

const shown = relative(process.cwd(), output) || output;
function check() {
  const dir = mkdtempSync(join(tmpdir(), 'saas-web-types-'));
  try {
    const fresh = join(dir, 'schema.gen.ts');
    generate(fresh, true);
    let committed = '';
    try {
      committed = readFileSync(output, 'utf8');
    } catch {
      // missing: reported as stale below
    }
    const d = firstDifference(committed, readFileSync(fresh, 'utf8'));
    if (d) {
      console.error(`check:types: ${shown} is stale: it no longer matches api/openapi.json.`);
      console.error(`  first difference, line ${d.line}:`);
      console.error(`    committed: ${d.committed.trim()}`);
      console.error(`    generated: ${d.generated.trim()}`);
      console.error('Run `npm run gen:types` in web/, fix what the type check then finds, and commit the result.');
      process.exitCode = 1;
    } else {
      console.log(`check:types: ${shown} matches api/openapi.json.`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!process.argv.includes('--check')) {
  generate(output, false);
} else {
  check();
}
