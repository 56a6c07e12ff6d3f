/**
 * A stand-in for a server's first start, as a separate process: opens the
 * store given as JSON in argv[2] (migrations run), bootstraps into the data
 * folder argv[3], prints `{"path": …}` and exits. Tests start several at once.
 */
import { AccountStore } from '../../lib/accounts/AccountStore.js';
import type { StoreConfig } from '../../lib/config/ServerConfig.js';
import { Store } from '../../lib/store/Store.js';

const store = await Store.open(JSON.parse(process.argv[2]!) as StoreConfig);
try {
  const path = await new AccountStore(store).bootstrap(process.argv[3]!);
  process.stdout.write(`${JSON.stringify({ path })}\n`);
} finally {
  await store.close();
}
