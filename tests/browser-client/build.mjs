#!/usr/bin/env node
// Bundles src/app.js (the official MCP TypeScript SDK client + an OAuthClientProvider
// kept in sessionStorage) for the browser: dist/app.js, an ES module.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

export async function buildBundle({ quiet = false } = {}) {
  const outfile = path.join(here, 'dist', 'app.js');
  await build({
    entryPoints: [path.join(here, 'src', 'app.js')],
    outfile,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: ['chrome120'],
    sourcemap: true,
    legalComments: 'none',
    logLevel: quiet ? 'error' : 'info',
  });
  return outfile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildBundle().catch(e => {
    console.error(e?.message ?? e);
    process.exit(1);
  });
}
