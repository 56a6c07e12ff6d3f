import type { Migration } from 'kysely';
import * as m0001 from './0001_accounts.js';
import * as m0002 from './0002_events.js';
import * as m0003 from './0003_api_key_signing.js';
import * as m0004 from './0004_webhooks.js';
import * as m0005 from './0005_status_url.js';
import * as m0006 from './0006_resource_context.js';
import * as m0007 from './0007_webhook_retention.js';

/**
 * Every migration, in order. Names sort as they run (Kysely applies them in
 * name order and refuses a store that has a migration this list lacks); a
 * migration, once released, is never edited: add the next one instead.
 */
export const migrations: Readonly<Record<string, Migration>> = {
  '0001_accounts': m0001,
  '0002_events': m0002,
  '0003_api_key_signing': m0003,
  '0004_webhooks': m0004,
  '0005_status_url': m0005,
  '0006_resource_context': m0006,
  '0007_webhook_retention': m0007,
};
