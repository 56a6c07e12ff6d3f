/** `npm run admin -- <command>` (or `node dist/lib/admin/main.js` after a build): see AdminCli.ts and docs/operations.md. */
import { runAdmin } from './AdminCli.js';

// A reader that stops early (`| head -1`) is not a failure of the command: end quietly, as Unix tools do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

process.exitCode = await runAdmin(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
