#!/usr/bin/env node
// Entry point: runs the compiled CLI (npm run build); kept as plain JS so the installed binary needs no TypeScript loader.
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write('xoauth2-relay: not built yet: run `npm run build` first\n');
    process.exit(70);
  }
  throw err;
});
