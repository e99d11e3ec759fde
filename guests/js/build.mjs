// Build a JavaScript tractor actor into a component.
//
//   node guests/js/build.mjs APP_DIR WORLD OUT.wasm
//
// APP_DIR holds `app.js` (an ES module whose exports are the world's exports,
// in camelCase) and the app's world in `world.wit` (or a `wit/` folder). That
// world includes `tractor:actor/imports@0.1.0`, resolved from the repository's
// own wit/ folder (linked in as a WIT dependency, never copied). WORLD is the
// world's name within that file. The app imports the helper as 'tractor'.
//
// Two steps, because ComponentizeJS takes a single JavaScript file:
//   1. esbuild bundles app.js, tractor.js and cborg into one ES module
//      (`tractor:*` and `wasi:*` imports stay external: they are the WIT imports);
//   2. ComponentizeJS (StarlingMonkey) turns it into a component, without
//      AOT compilation (weval), which would slow the build for little gain here.
// Needs `npm ci` in guests/js first (install.sh).

import { build } from 'esbuild';
import { componentize } from '@bytecodealliance/componentize-js';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [appArg, world, outArg] = process.argv.slice(2);
if (!appArg || !world || !outArg) {
  console.error('usage: node build.mjs APP_DIR WORLD OUT.wasm');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const repoWit = resolve(here, '../../wit');
const app = resolve(appArg);
const out = resolve(outArg);

const stage = mkdtempSync(join(tmpdir(), 'tractor-js-build-'));
try {
  // ComponentizeJS takes one WIT path: stage a package folder whose deps are
  // symlinks into the repository's wit/ (wit-parser reads only the .wit files
  // of each dependency folder, so wasi:io is linked separately).
  const wit = join(stage, 'wit');
  mkdirSync(join(wit, 'deps'), { recursive: true });
  const appWit = join(app, 'wit');
  if (existsSync(appWit)) {
    for (const f of readdirSync(appWit)) {
      if (f.endsWith('.wit')) symlinkSync(join(appWit, f), join(wit, f));
    }
    if (existsSync(join(appWit, 'deps'))) {
      for (const d of readdirSync(join(appWit, 'deps'))) symlinkSync(join(appWit, 'deps', d), join(wit, 'deps', d));
    }
  } else {
    symlinkSync(join(app, 'world.wit'), join(wit, 'world.wit'));
  }
  symlinkSync(repoWit, join(wit, 'deps', 'tractor'));
  for (const d of readdirSync(join(repoWit, 'deps'))) {
    if (!existsSync(join(wit, 'deps', d))) symlinkSync(join(repoWit, 'deps', d), join(wit, 'deps', d));
  }

  const t0 = Date.now();
  const bundle = join(stage, 'bundle.js');
  await build({
    absWorkingDir: here,          // esbuild would otherwise resolve against the caller's cwd
    entryPoints: [join(app, 'app.js')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',          // no node:* built-ins: the component has no Node.js
    target: 'es2022',
    alias: { tractor: join(here, 'tractor.js') },
    nodePaths: [join(here, 'node_modules')],
    external: ['tractor:*', 'wasi:*'],
    outfile: bundle,
    logLevel: 'warning',
  });
  const t1 = Date.now();
  const { component } = await componentize({
    sourcePath: bundle,
    witPath: wit,
    worldName: world,
    // The tractor host links wasi:cli/io/clocks/random/filesystem/sockets (p2),
    // not wasi:http: without this the component would not link.
    disableFeatures: ['http', 'fetch-event'],
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, component);
  console.error(`tractor js build: bundle ${t1 - t0} ms, componentize ${Date.now() - t1} ms, ${component.length} bytes -> ${out}`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
