/**
 * JSON Schema of the configuration, with the defaults Ajv fills in.
 * docs/configuration.md describes each setting; keep both in step.
 */
const port = { type: 'integer', minimum: 0, maximum: 65535 } as const;
const seconds = (dflt: number, max = 86_400) => ({ type: 'integer', minimum: 1, maximum: max, default: dflt }) as const;
const host = { type: 'string', minLength: 1 } as const;

const gateway = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'host', 'callerId'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
    host,
    port: { ...port, minimum: 1, default: 5060 },
    transport: { enum: ['udp', 'tcp'], default: 'udp' },
    maxConcurrentCalls: { type: 'integer', minimum: 1, default: 100 },
    callerId: { type: 'string', minLength: 1 },
    username: { type: 'string' },
    password: { type: 'string' },
  },
} as const;

/** Defaults of the embedded engine's network bounds (docs/configuration.md, docs/embedded-engine.md). */
export const EMBEDDED_LIMIT_DEFAULTS = {
  sipMaxMessageBytes: 65_535,
  sipMaxTcpConnections: 256,
  sipMaxTcpConnectionsPerSource: 16,
  sipTcpIdleSeconds: 60,
  // A completed UDP non-INVITE server transaction is held 32 s (Timer J, RFC 3261
  // §17.2.2), so R in-dialog requests/s hold 32·R: 20,000 covers 600 BYEs/s.
  sipMaxServerTransactions: 20_000,
  rtpLatchSeconds: 5,
} as const;

/**
 * Admission control defaults (issue 11, kind 8; docs/performance.md has the
 * measurements). An INVITE is pending until its final response: ringing
 * phones count, so the bound is far above what one node rings at once.
 */
export const EMBEDDED_ADMISSION_DEFAULTS = { maxPendingInvites: 2000 } as const;
export const DRACHTIO_ADMISSION_DEFAULTS = {
  /**
   * Endpoints created at once per FreeSWITCH, a safety valve: a burst
   * beyond it waits here instead of inside FreeSWITCH, where each new
   * channel's outbound event socket must connect within drachtio-fsmrf's
   * fixed 4 s. Creation takes 50-1000 ms (idle to saturated); 8, 24 and 48
   * queued creations at 20 callbacks/s on the loaded machine and fell below
   * the bare app (which has no limit); a burst beyond 96 waits here, up to
   * maxEndpointsPending.
   */
  endpointCreateConcurrency: 96,
  /**
   * Endpoints being created or waiting for a creation slot, all servers: a
   * bound on a burst, twice the creation concurrency. Whether FreeSWITCH
   * keeps up is maxEndpointCreateMs's to judge: 96 pending (80/s taking
   * 1.2 s each) refused calls at 40 callbacks/s offered that FreeSWITCH
   * still set up for the bare app (docs/performance.md).
   */
  maxEndpointsPending: 192,
  /**
   * The slowest endpoint creation (recent average, or the oldest still in
   * progress) FreeSWITCH may show before constructs are refused: half of
   * drachtio-fsmrf's fixed 4 s for a new channel's event socket, past which
   * creations fail ("Connection timeout").
   */
  maxEndpointCreateMs: 2000,
  /**
   * The slowest SDP or bridge request on a call's endpoint (recent average,
   * or the oldest still in progress) FreeSWITCH may show before constructs
   * are refused. These requests come after a person answered, so they must
   * stay well under what a person waits in silence (a few seconds): on a
   * FreeSWITCH slower than its sessions-per-second, 1000 still let answered
   * calls fail (5-9 per run at 30-40/s offered), 500 none, at a higher rate
   * (docs/performance.md, "A slow FreeSWITCH").
   */
  maxMediaRequestMs: 500,
  maxPendingInvites: 2000,
} as const;

const count = (dflt: number, min: number, max: number) => ({ type: 'integer', minimum: min, maximum: max, default: dflt }) as const;

export const embeddedEngineSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'embedded' },
    sipHost: { ...host, default: '127.0.0.1' },
    sipPort: { ...port, default: 5060 },
    publicHost: host,
    rtpHost: { ...host, default: '127.0.0.1' },
    rtpPortMin: { ...port, minimum: 1024, default: 20000 },
    rtpPortMax: { ...port, minimum: 1024, default: 29999 },
    mediaTimeoutSeconds: seconds(30, 3600),
    sipMaxMessageBytes: count(EMBEDDED_LIMIT_DEFAULTS.sipMaxMessageBytes, 1_500, 1_048_576),
    sipMaxTcpConnections: count(EMBEDDED_LIMIT_DEFAULTS.sipMaxTcpConnections, 1, 100_000),
    sipMaxTcpConnectionsPerSource: count(EMBEDDED_LIMIT_DEFAULTS.sipMaxTcpConnectionsPerSource, 1, 100_000),
    sipTcpIdleSeconds: seconds(EMBEDDED_LIMIT_DEFAULTS.sipTcpIdleSeconds, 3600),
    sipMaxServerTransactions: count(EMBEDDED_LIMIT_DEFAULTS.sipMaxServerTransactions, 1, 1_000_000),
    rtpLatchSeconds: count(EMBEDDED_LIMIT_DEFAULTS.rtpLatchSeconds, 0, 60),
    admission: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { maxPendingInvites: count(EMBEDDED_ADMISSION_DEFAULTS.maxPendingInvites, 2, 1_000_000) },
    },
  },
} as const;

export const drachtioEngineSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'drachtio', 'freeswitch'],
  properties: {
    type: { const: 'drachtio' },
    drachtio: {
      type: 'object',
      additionalProperties: false,
      required: ['secret'],
      properties: { host: { ...host, default: '127.0.0.1' }, port: { ...port, default: 9022 }, secret: { type: 'string' } },
    },
    freeswitch: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          host: { ...host, default: '127.0.0.1' },
          port: { ...port, default: 8021 },
          secret: { type: 'string', default: 'ClueCon' },
        },
      },
    },
    eslListenHost: { ...host, default: '127.0.0.1' },
    freeswitchMediaDir: host,
    freeswitchRecordingsDir: host,
    endpointCreateConcurrency: count(DRACHTIO_ADMISSION_DEFAULTS.endpointCreateConcurrency, 1, 1000),
    admission: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        // At least 2: a duo_callback asks for two endpoints at once, and a limit below that would refuse every one forever.
        // No default: each FreeSWITCH's own sessions-per-second (DrachtioEngine.saturation).
        maxEndpointsPerSecond: { type: 'integer', minimum: 2, maximum: 100_000 },
        maxEndpointsPending: count(DRACHTIO_ADMISSION_DEFAULTS.maxEndpointsPending, 2, 100_000),
        maxEndpointCreateMs: count(DRACHTIO_ADMISSION_DEFAULTS.maxEndpointCreateMs, 100, 60_000),
        maxMediaRequestMs: count(DRACHTIO_ADMISSION_DEFAULTS.maxMediaRequestMs, 50, 60_000),
        maxPendingInvites: count(DRACHTIO_ADMISSION_DEFAULTS.maxPendingInvites, 2, 1_000_000),
      },
    },
  },
} as const;

export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    nodeId: { type: 'string', pattern: '^[A-Za-z0-9.]+$', default: '0.0.0' },
    listen: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { ...host, default: '127.0.0.1' },
        port: { ...port, default: 8088 },
        maxFrameBytes: { type: 'integer', minimum: 1024, maximum: 16_777_216, default: 65_536 },
        maxBatchLength: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
        maxBufferedBytes: { type: 'integer', minimum: 65_536, maximum: 1_073_741_824, default: 4_194_304 },
        maxUnauthenticatedConnections: { type: 'integer', minimum: 1, maximum: 100_000, default: 128 },
        maxConnectionsPerSource: { type: 'integer', minimum: 1, maximum: 100_000, default: 256 },
        allowedOrigins: {
          type: 'array',
          maxItems: 100,
          items: { type: 'string', pattern: '^https?://[A-Za-z0-9.\\[\\]:-]+$' },
          default: [],
        },
      },
    },
    http: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: false },
        host: { ...host, default: '127.0.0.1' },
        port: { ...port, default: 8089 },
        maxBodyBytes: { type: 'integer', minimum: 1024, maximum: 16_777_216, default: 65_536 },
        requestTimeoutSeconds: seconds(30, 3600),
      },
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        mode: { enum: ['key', 'none'], default: 'key' },
        timeoutSeconds: seconds(10, 300),
        maxFailedAttempts: { type: 'integer', minimum: 1, maximum: 10_000, default: 10 },
        failedAttemptsWindowSeconds: seconds(60, 86_400),
      },
    },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    // Only the type here: the loader validates the rest against the schema of that type (Ajv fills no defaults inside oneOf).
    engine: {
      type: 'object',
      default: {},
      properties: { type: { enum: ['embedded', 'drachtio', 'none'], default: 'embedded' } },
    },
    gateways: { type: 'array', items: gateway, default: [] },
    defaultGateway: { type: 'string' },
    mediaDir: { ...host, default: 'media' },
    recordingsDir: { ...host, default: 'recordings' },
    ringbackFile: { ...host, default: 'ringback.wav' },
    countdownFile: { ...host, default: 'countdown.wav' },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxResources: { type: 'integer', minimum: 1, default: 2000 },
        defaultMaxAnswerSeconds: seconds(3600),
        maxAnswerSecondsCap: seconds(14_400),
        duoRingSeconds: seconds(45, 600),
        notifyRingSeconds: seconds(50, 600),
        ringSecondsCap: seconds(120, 600),
        dialTimeoutSeconds: seconds(30, 600),
        playRepeatCap: { type: 'integer', minimum: 0, maximum: 100, default: 20 },
        maxPlayFiles: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
        maxPlaySeconds: { type: 'integer', minimum: 1, maximum: 86_400, default: 3600 },
        maxRedirects: { type: 'integer', minimum: 0, maximum: 10, default: 3 },
        maxSubscriptionsPerConnection: { type: 'integer', minimum: 1, maximum: 100_000, default: 100 },
      },
    },
    dataDir: { ...host, default: 'data' },
    // Only the type here, like engine: the loader validates the rest against that type's schema.
    store: {
      type: 'object',
      default: {},
      properties: { type: { enum: ['sqlite', 'postgres'], default: 'sqlite' } },
    },
    durableEvents: { type: 'boolean', default: true },
    retention: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        cdrDays: { type: 'integer', minimum: 1, maximum: 3650, default: 30 },
        eventDays: { type: 'integer', minimum: 1, maximum: 3650, default: 30 },
        webhookDays: { type: 'integer', minimum: 1, maximum: 3650, default: 30 },
      },
    },
    webhooks: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        allowPrivateTargets: { type: 'boolean', default: false },
        requestTimeoutSeconds: seconds(10, 120),
        maxConcurrent: { type: 'integer', minimum: 1, maximum: 1000, default: 16 },
        firstRetrySeconds: seconds(5, 3600),
        maxRetryDelaySeconds: seconds(3600, 86_400),
        retryForHours: { type: 'integer', minimum: 1, maximum: 720, default: 25 },
      },
    },
    shutdownGraceSeconds: seconds(10, 600),
  },
} as const;

export const sqliteStoreSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'sqlite' },
    path: { ...host, default: 'cti.sqlite' },
  },
} as const;

export const postgresStoreSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'url'],
  properties: {
    type: { const: 'postgres' },
    url: { type: 'string', pattern: '^postgres(ql)?://' },
    poolSize: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
  },
} as const;

export const noEngineSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { type: { const: 'none' } },
} as const;
