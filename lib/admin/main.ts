/** `npm run admin -- <command>` (or `node dist/lib/admin/main.js` after a build): see AdminCli.ts and docs/operations.md. */
import { runAdmin } from './AdminCli.js';

process.exitCode = await runAdmin(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
