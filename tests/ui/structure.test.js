// The UI's module structure, read from the source (no nosd, no browser): every file is
// type-checked (`// @ts-check` first), and a page imports only the shared modules, never
// another page, so what two pages share lives in components.js.

import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { test } from 'node:test';

const UI = new URL('../../host/ui/', import.meta.url);
const SHARED = ['../api.js', '../components.js', '../dom.js'];

/** The specifiers of a module's static imports. */
function importsOf(source) {
  return [...source.matchAll(/^import\s[^;]*?from\s+'([^']+)';/gms)].map((match) => match[1]);
}

test('pages import only api.js, components.js and dom.js; every module is @ts-check', async () => {
  const pages = (await readdir(new URL('pages/', UI))).filter((name) => name.endsWith('.js'));
  const shared = (await readdir(UI)).filter((name) => name.endsWith('.js'));
  assert.ok(pages.length >= 10, `pages: ${pages.join(', ')}`);
  for (const name of pages) {
    const source = await readFile(new URL(`pages/${name}`, UI), 'utf8');
    assert.ok(source.startsWith('// @ts-check\n'), `pages/${name} does not start with // @ts-check`);
    const imports = importsOf(source);
    assert.ok(imports.length > 0, `pages/${name}: no imports found`);
    for (const specifier of imports) {
      assert.ok(SHARED.includes(specifier), `pages/${name} imports ${specifier}; pages import only ${SHARED.join(', ')}`);
    }
  }
  for (const name of shared) {
    const source = await readFile(new URL(name, UI), 'utf8');
    assert.ok(source.startsWith('// @ts-check\n'), `${name} does not start with // @ts-check`);
    for (const specifier of importsOf(source)) {
      assert.ok(specifier.startsWith('./') && !specifier.startsWith('./pages/'), `${name} imports ${specifier}`);
    }
  }
});
