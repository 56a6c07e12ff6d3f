#!/usr/bin/env node
// pretest: the SIP tests drive SIPp as the far end, so make sure it exists
// before tap starts (a missing binary would otherwise fail every test late).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { aptInstall, isRoot } from './aptInstall.mjs';

const HINT = "SIPp is required: install it with 'apt-get install sip-tester'";

function onPath(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

if (onPath('sipp')) process.exit(0);

if (!isRoot || !onPath('apt-get')) {
  console.error(HINT);
  process.exit(1);
}

console.error('SIPp not found: installing Debian package sip-tester with apt-get');
// Output goes to a pipe so the one-line contract holds; it is shown only on failure.
const failure = aptInstall('sip-tester');
if (failure !== null || !onPath('sipp')) {
  if (process.env.ENSURE_SIPP_VERBOSE) console.error(failure ?? '');
  console.error(HINT);
  process.exit(1);
}
process.exit(0);
