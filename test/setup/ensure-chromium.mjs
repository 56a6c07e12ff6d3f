#!/usr/bin/env node
// pretest: the browser test (test/api/browser.test.ts) drives Debian's chromium
// through playwright-core (which cannot download browsers here). Installs it
// when missing and the run is root; otherwise one line, and that test skips.
import { accessSync, constants } from 'node:fs';
import { aptInstall, isRoot } from './aptInstall.mjs';

const CHROMIUM = '/usr/bin/chromium';
const HINT = "chromium is needed by the browser test: install it with 'apt-get install chromium' (the test skips until then)";

const present = () => {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

if (!present()) {
  if (isRoot) {
    console.error('chromium not found: installing Debian package chromium with apt-get');
    const failure = aptInstall('chromium');
    if (failure !== null && process.env.ENSURE_CHROMIUM_VERBOSE) console.error(failure);
  }
  if (!present()) console.error(HINT);
}
