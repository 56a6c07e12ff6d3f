/**
 * `npm run admin -- <command>`: accounts and API keys from a shell or a
 * script (docs/operations.md). It reads the server's configuration (file via
 * `--config` or CTI_CONFIG, then CTI_* environment) to find the store.
 *
 * Exit codes: 0 done; 2 usage error (unknown command or option, malformed
 * argument, bad configuration); 1 failure (unknown account or key, existing
 * account, store unreachable). Errors are one line on stderr; with `--json`
 * stdout carries exactly one JSON document.
 */
import { Command, CommanderError } from 'commander';
import type { AccountLimits } from '../accounts/Account.js';
import { InvalidAccountInput, validate } from '../accounts/accountInput.js';
import { AccountStore, AccountStoreError, type AccountRecord, type ApiKeyInfo } from '../accounts/AccountStore.js';
import { ConfigError, loadConfig } from '../config/loadConfig.js';
import type { ServerConfig } from '../config/ServerConfig.js';
import { WebhookStore, type WebhookTargetInfo } from '../events/webhooks/WebhookStore.js';
import { InvalidWebhookUrl } from '../events/webhooks/targetAddress.js';
import { Store } from '../store/Store.js';

export interface AdminIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** What every command gets besides the account store. */
interface RunContext {
  readonly config: ServerConfig;
  readonly store: Store;
}

/** A usage problem found after commander parsed the line (exit 2). */
class UsageError extends Error {}

interface GlobalOptions {
  readonly config?: string;
  readonly json?: boolean;
}

/** Limit options as typed on the line. */
interface LimitOptions {
  readonly maxLiveResources?: string;
  readonly constructsPerSecond?: string;
  readonly gateways?: string;
  readonly callerIds?: string;
}

/** Runs one admin command line (without `node` and the script) and resolves to its exit code. */
export async function runAdmin(argv: readonly string[], io: AdminIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const usage = err instanceof UsageError || err instanceof InvalidAccountInput || err instanceof ConfigError;
    io.stderr(`cti-admin: ${oneLine(err)}\n`);
    return usage ? 2 : 1;
  }
}

function buildProgram(io: AdminIo): Command {
  const program = new Command('cti-admin')
    .description('Manage the accounts and API keys of the CTI server')
    .option('-c, --config <file>', 'JSON config file (default: CTI_CONFIG, then defaults and CTI_* environment)')
    .option('--json', 'print one JSON document on stdout')
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      outputError: (text, write) => write(`cti-admin: ${text.replace(/^error: /, '')}`),
    })
    .showSuggestionAfterError(true);

  /** Opens the store of the configuration, runs `work`, prints its answer, closes the store. */
  const run =
    <A extends unknown[]>(work: (accounts: AccountStore, context: RunContext, ...args: A) => Promise<Output>) =>
    async (...args: A): Promise<void> => {
      const options = program.opts<GlobalOptions>();
      const file = options.config ?? io.env.CTI_CONFIG;
      const config = loadConfig({ ...(file ? { file } : {}), env: io.env });
      const store = await Store.open(config.store);
      try {
        const output = await work(new AccountStore(store), { config, store }, ...args);
        io.stdout(options.json ? `${JSON.stringify(output.json)}\n` : `${output.text}\n`);
      } finally {
        await store.close();
      }
    };

  const account = program.command('account').description('create, list, show, enable, disable accounts and set their limits');
  withLimitOptions(
    account
      .command('create')
      .description('create an enabled account (new accounts may present only the gateways\' caller ids until --caller-ids is set)')
      .argument('<account_id>', 'the {account_id} of the API URLs: [A-Za-z0-9_-], 1-64 characters')
      .option('--name <name>', 'display name (default: the account id)'),
  ).action(
    run(async (accounts, { config }, accountId: string, options: LimitOptions & { name?: string }) => {
      const limits = checkLimits(options, config);
      const created = await accounts.create({ accountId, ...(options.name !== undefined ? { name: options.name } : {}), limits });
      return accountOutput(created);
    }),
  );
  account
    .command('list')
    .description('every account')
    .action(
      run(async (accounts) => {
        const list = await accounts.list();
        return {
          json: list.map(accountJson),
          text: list.length ? list.map((a) => `${a.accountId}\t${a.enabled ? 'enabled' : 'disabled'}\t${a.name}`).join('\n') : '(no accounts)',
        };
      }),
    );
  account
    .command('show')
    .description('one account and its limits')
    .argument('<account_id>')
    .action(
      run(async (accounts, _config, accountId: string) => {
        validate.accountId(accountId);
        const found = await accounts.get(accountId);
        if (!found) throw new AccountStoreError('not_found', `no account ${accountId}`);
        return accountOutput(found);
      }),
    );
  for (const [name, enabled] of [['enable', true], ['disable', false]] as const) {
    account
      .command(name)
      .description(enabled ? 'let the account\'s keys authenticate again' : 'refuse the account\'s keys from now on (on other nodes within 5 s)')
      .argument('<account_id>')
      .action(run(async (accounts, _config, accountId: string) => accountOutput(await accounts.setEnabled(accountId, enabled))));
  }
  withLimitOptions(
    account.command('limits').description('change the given limits, keep the others; prints the account').argument('<account_id>'),
  ).action(
    run(async (accounts, { config }, accountId: string, options: LimitOptions) => accountOutput(await accounts.setLimits(accountId, checkLimits(options, config)))),
  );

  account
    .command('webhook')
    .description("show, set or clear the account's event_url; the signing secret (whsec_…) is created with the first URL")
    .argument('<account_id>')
    .option('--url <url>', 'http(s) URL every event of the account is POSTed to (Standard Webhooks signed)')
    .option('--clear', 'stop delivering (the secret is kept for the next URL)')
    .action(
      run(async (accounts, { store }, accountId: string, options: { url?: string; clear?: boolean }) => {
        validate.accountId(accountId);
        if (options.url !== undefined && options.clear) throw new UsageError('--url and --clear exclude each other');
        if (!(await accounts.get(accountId))) throw new AccountStoreError('not_found', `no account ${accountId}`);
        const webhooks = new WebhookStore(store);
        let info: WebhookTargetInfo | null;
        if (options.url !== undefined || options.clear) {
          try {
            info = await webhooks.setUrl(accountId, options.clear ? null : options.url!, Date.now());
          } catch (err) {
            if (err instanceof InvalidWebhookUrl) throw new UsageError(`--url: ${err.message}`);
            throw err;
          }
        } else {
          const target = await webhooks.target(accountId);
          info = target ? { account_id: accountId, event_url: target.url, secret: target.secret } : null;
        }
        const json = info ?? { account_id: accountId, event_url: null, secret: null };
        return { json, text: `account ${accountId} webhook: ${json.event_url ?? '(none)'}\n  secret: ${json.secret ?? '(none yet)'}` };
      }),
    );

  const key = program.command('key').description('create, list, revoke API keys');
  key
    .command('create')
    .description('a new key for the account; the key is printed once and cannot be shown again')
    .argument('<account_id>')
    .option('--label <text>', 'a note for people (where the key is used)', '')
    .action(
      run(async (accounts, _config, accountId: string, options: { label: string }) => {
        const created = await accounts.createKey(accountId, options.label);
        return {
          json: { ...keyJson(created), key: created.key },
          text: `${created.key}\n(key id ${created.keyId} for account ${created.accountId}: store the key now, it is not shown again)`,
        };
      }),
    );
  key
    .command('list')
    .description('keys of one account or of all, newest first, with last use and revocation')
    .argument('[account_id]')
    .action(
      run(async (accounts, _config, accountId?: string) => {
        const keys = await accounts.listKeys(accountId);
        return { json: keys.map(keyJson), text: keys.length ? keys.map(keyLine).join('\n') : '(no keys)' };
      }),
    );
  key
    .command('revoke')
    .description('the key stops authenticating (on other nodes within 5 s); it stays listed as revoked')
    .argument('<key_id>')
    .action(run(async (accounts, _config, keyId: string) => keyOutput(await accounts.revokeKey(keyId))));

  return program;
}

interface Output {
  readonly json: unknown;
  readonly text: string;
}

function withLimitOptions(command: Command): Command {
  return command
    .option('--max-live-resources <n|none>', 'live resources at once (none: only the server-wide limit)')
    .option('--constructs-per-second <n|none>', 'construct rate (none: unlimited)')
    .option('--gateways <names|all>', 'comma-separated gateway names this account may use (all: every gateway)')
    .option('--caller-ids <ids|any|none>', "comma-separated caller ids it may present (any: no check; none: only the gateways' own)");
}

/**
 * Only the limits given on the line. Keywords and numbers are read here (commander
 * turns a parser's null into ''), list items are checked by the store, and
 * gateway names must exist in this configuration.
 */
function checkLimits(options: LimitOptions, config: ServerConfig): Partial<AccountLimits> {
  const limits: { -readonly [K in keyof AccountLimits]?: AccountLimits[K] } = {};
  if (options.maxLiveResources !== undefined) limits.maxLiveResources = parseCount('--max-live-resources', options.maxLiveResources, 1_000_000);
  if (options.constructsPerSecond !== undefined) {
    limits.constructsPerSecond = parseCount('--constructs-per-second', options.constructsPerSecond, 100_000);
  }
  if (options.gateways !== undefined) {
    limits.gateways = parseList(options.gateways, 'all');
    const known = new Set(config.gateways.map((g) => g.name));
    const unknown = limits.gateways?.find((g) => !known.has(g));
    if (unknown !== undefined) throw new UsageError(`--gateways: no gateway named '${unknown}' in the configuration`);
  }
  if (options.callerIds !== undefined) limits.callerIds = parseList(options.callerIds, 'any');
  return limits;
}

function parseCount(option: string, value: string, max: number): number | null {
  if (value === 'none') return null;
  if (!/^[1-9][0-9]{0,6}$/.test(value) || Number(value) > max) throw new UsageError(`${option}: expected an integer from 1 to ${max}, or none`);
  return Number(value);
}

/** `a,b` → list; `none` or empty → []; the unlimited keyword → null. */
function parseList(value: string, unlimited: string): string[] | null {
  if (value === unlimited) return null;
  if (value === 'none' || value === '') return [];
  return value.split(',').map((s) => s.trim());
}

/** Times as integer Unix seconds, like every time in the API. */
const seconds = (ms: number | null): number | null => (ms === null ? null : Math.floor(ms / 1000));
const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

function accountJson(a: AccountRecord) {
  return {
    account_id: a.accountId,
    name: a.name,
    enabled: a.enabled,
    limits: {
      max_live_resources: a.limits.maxLiveResources,
      constructs_per_second: a.limits.constructsPerSecond,
      gateways: a.limits.gateways,
      caller_ids: a.limits.callerIds,
    },
    created_at: seconds(a.createdAt),
    updated_at: seconds(a.updatedAt),
  };
}

function accountOutput(a: AccountRecord): Output {
  const list = (l: readonly string[] | null, unlimited: string) => (l === null ? unlimited : l.length ? l.join(',') : 'none');
  const text = [
    `account ${a.accountId} (${a.enabled ? 'enabled' : 'disabled'}): ${a.name}`,
    `  max live resources:    ${a.limits.maxLiveResources ?? 'none'}`,
    `  constructs per second: ${a.limits.constructsPerSecond ?? 'none'}`,
    `  gateways:              ${list(a.limits.gateways, 'all')}`,
    `  caller ids:            ${list(a.limits.callerIds, 'any')}`,
    `  created ${iso(a.createdAt)}, updated ${iso(a.updatedAt)}`,
  ].join('\n');
  return { json: accountJson(a), text };
}

function keyJson(k: ApiKeyInfo) {
  return {
    key_id: k.keyId,
    account_id: k.accountId,
    label: k.label,
    created_at: seconds(k.createdAt),
    last_used_at: seconds(k.lastUsedAt),
    revoked_at: seconds(k.revokedAt),
  };
}

function keyLine(k: ApiKeyInfo): string {
  const state = k.revokedAt === null ? 'active' : `revoked ${iso(k.revokedAt)}`;
  return `${k.keyId}\t${k.accountId}\t${state}\tcreated ${iso(k.createdAt)}\tlast used ${iso(k.lastUsedAt)}\t${k.label}`;
}

const keyOutput = (k: ApiKeyInfo): Output => ({ json: keyJson(k), text: keyLine(k) });

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
