/** The validated server configuration (see docs/configuration.md). */

export interface ListenConfig {
  readonly host: string;
  readonly port: number;
  /** Largest JSON-RPC text frame answered normally; larger frames get -32600. */
  readonly maxFrameBytes: number;
  /** Most requests in one batch; a longer batch gets one -32600. */
  readonly maxBatchLength: number;
  /** Bytes a connection may have waiting to be sent before it is terminated as a slow reader. */
  readonly maxBufferedBytes: number;
  /**
   * WebSocket connections open (or upgrading) without an account at once,
   * over all sources; beyond, an upgrade without a Bearer key is refused 503.
   */
  readonly maxUnauthenticatedConnections: number;
  /** TCP connections one remote address may hold at once; beyond, a new one is closed at accept. */
  readonly maxConnectionsPerSource: number;
  /**
   * Origins (`scheme://host[:port]`) whose browser pages may connect. An
   * upgrade carrying any other Origin header is refused 403; clients that
   * send none (servers) are not affected. Default: none.
   */
  readonly allowedOrigins: readonly string[];
}

/**
 * The HTTP API of seed 000 (issue 10; docs/http-api.md), with /metrics,
 * /healthz and /readyz. Off unless enabled: a second public surface is the
 * operator's choice.
 */
export interface HttpConfig {
  readonly enabled: boolean;
  readonly host: string;
  readonly port: number;
  /** Largest request body read; a larger one is answered 413 without being read further. */
  readonly maxBodyBytes: number;
  /**
   * A request must arrive whole within this many seconds, and a connection
   * idle this long is closed: a client trickling bytes cannot hold a socket
   * (fastify's default is no limit).
   */
  readonly requestTimeoutSeconds: number;
}

/** How connections prove their account (issue 8; docs/security.md). */
export interface AuthConfig {
  /** `key`: API keys from the account store. `none`: every connection is the `default` account (loopback only). */
  readonly mode: 'key' | 'none';
  /** An unauthenticated connection is closed after this many seconds. */
  readonly timeoutSeconds: number;
  /** Failed key checks one source address may make per window; then it is throttled until the window ends. */
  readonly maxFailedAttempts: number;
  readonly failedAttemptsWindowSeconds: number;
}

export interface GatewayConfig {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly transport: 'udp' | 'tcp';
  readonly maxConcurrentCalls: number;
  /** Caller id used when a construct gives none, e.g. `sip:075589877675@gw1`. */
  readonly callerId: string;
  readonly username?: string;
  readonly password?: string;
}

export interface EmbeddedEngineConfig {
  readonly type: 'embedded';
  /** Local address and port the SIP user agent binds (UDP and TCP). */
  readonly sipHost: string;
  readonly sipPort: number;
  /** Address written into Contact/Via and SDP when it differs from the bind address. */
  readonly publicHost?: string;
  readonly rtpHost: string;
  readonly rtpPortMin: number;
  readonly rtpPortMax: number;
  /** A call that receives no RTP for this long after answer ends with engine_error. */
  readonly mediaTimeoutSeconds: number;
  /** Bounds on what a SIP peer can make the engine hold (defaults: EMBEDDED_LIMIT_DEFAULTS). */
  readonly sipMaxMessageBytes?: number;
  readonly sipMaxTcpConnections?: number;
  readonly sipMaxTcpConnectionsPerSource?: number;
  readonly sipTcpIdleSeconds?: number;
  readonly sipMaxServerTransactions?: number;
  /** After an answer or a new SDP, how long RTP from the signalling peer's IP may move where we send (NAT latch); 0: never. */
  readonly rtpLatchSeconds?: number;
  /** Admission control (issue 11, kind 8); defaults: EMBEDDED_ADMISSION_DEFAULTS. */
  readonly admission?: { readonly maxPendingInvites?: number };
}

export interface FreeswitchServerConfig {
  readonly host: string;
  readonly port: number;
  readonly secret: string;
}

export interface DrachtioEngineConfig {
  readonly type: 'drachtio';
  readonly drachtio: { readonly host: string; readonly port: number; readonly secret: string };
  readonly freeswitch: readonly FreeswitchServerConfig[];
  /** Address drachtio-fsmrf's outbound event socket listens on (must be reachable by FreeSWITCH). */
  readonly eslListenHost: string;
  /** Folder of media/recordings as FreeSWITCH sees it, when it runs elsewhere. Default: the same paths. */
  readonly freeswitchMediaDir?: string;
  readonly freeswitchRecordingsDir?: string;
  /** Endpoints created at once per FreeSWITCH; more wait in turn (default DRACHTIO_ADMISSION_DEFAULTS). */
  readonly endpointCreateConcurrency?: number;
  /** Admission control (issue 11, kind 8); defaults: DRACHTIO_ADMISSION_DEFAULTS. */
  readonly admission?: {
    readonly maxEndpointsPerSecond?: number;
    readonly maxEndpointsPending?: number;
    /** ms: refuse while FreeSWITCH takes longer than this to create an endpoint. */
    readonly maxEndpointCreateMs?: number;
    /** ms: refuse while FreeSWITCH takes longer than this to apply a call's SDP or bridge. */
    readonly maxMediaRequestMs?: number;
    readonly maxPendingInvites?: number;
  };
}

/** Refuses every call with the engine-unavailable error; for API-only deployments. */
export interface NoEngineConfig {
  readonly type: 'none';
}

export type EngineConfig = EmbeddedEngineConfig | DrachtioEngineConfig | NoEngineConfig;

/** The zero-install default: one SQLite file (better-sqlite3) on this node. */
export interface SqliteStoreConfig {
  readonly type: 'sqlite';
  /** Database file; a relative path resolves inside `dataDir` (loadConfig makes it absolute). */
  readonly path: string;
}

/** PostgreSQL, for several CTI nodes sharing one set of accounts. */
export interface PostgresStoreConfig {
  readonly type: 'postgres';
  /** libpq-style connection URL, e.g. `postgres://cti:secret@db.example:5432/cti`; may carry a password: never logged. */
  readonly url: string;
  /** Connections this node keeps open at most. */
  readonly poolSize: number;
}

export type StoreConfig = SqliteStoreConfig | PostgresStoreConfig;

export interface LimitsConfig {
  /** Live resources at once, across all connections; more → capacity exceeded. */
  readonly maxResources: number;
  /** `max_answer_seconds` when a construct omits it, and the largest accepted. */
  readonly defaultMaxAnswerSeconds: number;
  readonly maxAnswerSecondsCap: number;
  /** `max_ring_seconds` defaults (duo_callback: per party from dialling; notify_call: from ringing). */
  readonly duoRingSeconds: number;
  readonly notifyRingSeconds: number;
  readonly ringSecondsCap: number;
  /** Bounds the wait for any response before ringing starts (notify_call) or overall per party. */
  readonly dialTimeoutSeconds: number;
  readonly playRepeatCap: number;
  /** Most files in one notify_call prompt (after type-7 lists are split). */
  readonly maxPlayFiles: number;
  /** Longest total play time of a notify_call: the prompt's duration × (play_repeat + 1), in seconds. */
  readonly maxPlaySeconds: number;
  /** Most `sys.subscribe` subscriptions one connection may hold. */
  readonly maxSubscriptionsPerConnection: number;
  /**
   * 3xx redirects (300/301/302, RFC 3261 §8.1.3.4) followed per party; one
   * more ends the party `rejected` with the 3xx's status (docs/errors.md). 0
   * follows none.
   */
  readonly maxRedirects: number;
}

/** How long the store keeps what it logs (issue 9); pruned hourly. */
export interface RetentionConfig {
  /** Days a released resource's CDR (and its final context for sys.resource.get) is kept. */
  readonly cdrDays: number;
  /** Days an event stays replayable. */
  readonly eventDays: number;
  /**
   * Days a webhook delivery attempt (`sys.webhooks.attempts`) is kept, and a
   * call's status_url target once nothing more is sent to it (issue 10).
   */
  readonly webhookDays: number;
}

/** Webhook delivery (issue 10; docs/configuration.md, docs/security.md). */
export interface WebhooksConfig {
  /** Deliver to loopback/private/link-local/CGNAT/multicast addresses too (default false: refused). */
  readonly allowPrivateTargets: boolean;
  /** Bound of one POST, seconds. */
  readonly requestTimeoutSeconds: number;
  /** POSTs in flight at once over all accounts. */
  readonly maxConcurrent: number;
  /** Delay after the first failed attempt, seconds; doubled per failure, ±50 % jitter. */
  readonly firstRetrySeconds: number;
  /** Cap of one retry delay, seconds. */
  readonly maxRetryDelaySeconds: number;
  /** Retry an event for this long after its first attempt, then mark it failed. */
  readonly retryForHours: number;
}

export interface ServerConfig {
  /** `<node>` of every res_id; lets a cluster route a res_id to its owner. */
  readonly nodeId: string;
  readonly listen: ListenConfig;
  readonly http: HttpConfig;
  readonly auth: AuthConfig;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly engine: EngineConfig;
  readonly gateways: readonly GatewayConfig[];
  /** Gateway for bare phone numbers; default: the first gateway. */
  readonly defaultGateway?: string;
  /** Where ring_play_file and play_content names resolve. */
  readonly mediaDir: string;
  /** Where record_file names resolve. */
  readonly recordingsDir: string;
  /** Played to party 1 when party 2 rings without early media and no ring_play_file applies. */
  readonly ringbackFile: string;
  /** The duo_callback countdown warning when no countdown_play_file is given (a file name in mediaDir). */
  readonly countdownFile: string;
  readonly limits: LimitsConfig;
  /** Folder of the server's own files (SQLite database, the bootstrap API key); created 0700 when missing. */
  readonly dataDir: string;
  /** Where accounts and keys, the event log and CDRs live. */
  readonly store: StoreConfig;
  readonly retention: RetentionConfig;
  readonly webhooks: WebhooksConfig;
  /**
   * true: events, resource rows and CDRs are committed to the store before
   * anything is sent (issue 9). false: events are numbered in memory, replay
   * reaches only the last 10,000 events of this run, no CDRs, no restart
   * recovery (for measurements; not for production).
   */
  readonly durableEvents: boolean;
  /** Seconds a shutdown waits for resources to release before exiting anyway. */
  readonly shutdownGraceSeconds: number;
}
