import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { WebhookDispatcher } from '../../events/webhooks/WebhookDispatcher.js';
import type { ReleaseBase } from '../../resources/Resource.js';
import type { ResourceRegistry } from '../../resources/ResourceRegistry.js';
import type { EngineAdmission } from '../../service/EngineAdmission.js';
import type { TelephonyEngine } from '../../telephony/TelephonyEngine.js';

/** What the metrics read at scrape time. */
export interface MetricsSources {
  readonly registry: ResourceRegistry;
  readonly engine: TelephonyEngine;
  /** Admission control, whose refusals are counted by cause. */
  readonly admission?: EngineAdmission;
  /** Open WebSocket connections now. */
  readonly wsConnections: () => number;
  /** Webhook delivery, when the server has a store. */
  readonly webhooks?: WebhookDispatcher;
}

/** Seconds from construct to the first answer: post-dial delay plus ring time. */
const SETUP_BUCKETS = [0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 90];

/**
 * The Prometheus metrics of `GET /metrics` (prom-client, its own registry per
 * server so several servers in one process do not share counters). Names
 * follow the Prometheus conventions: `cti_` prefix, `_total` counters,
 * seconds as the unit.
 */
export class ServerMetrics {
  readonly registry = new Registry();

  constructor(sources: MetricsSources) {
    const { registry: resources, engine, webhooks, admission } = sources;
    const registers = [this.registry];
    if (admission) {
      const refusals = new Counter({
        name: 'cti_engine_refusals_total',
        help: 'Constructs refused because the telephony engine is saturated, by cause (endpoints_pending, endpoint_rate, media_requests_slow, pending_invites, rtp_ports).',
        labelNames: ['cause'] as const,
        registers,
      });
      admission.on('refused', (cause) => refusals.inc({ cause }));
    }
    if (webhooks) {
      new Gauge({
        name: 'cti_webhook_queue_depth',
        help: 'Events committed but not yet delivered (or failed) to webhook targets.',
        registers,
        collect() {
          this.set(webhooks.queueDepth);
        },
      });
      const attempts = new Counter({ name: 'cti_webhook_attempts_total', help: 'Webhook POSTs by outcome (delivered, retrying, failed).', labelNames: ['outcome'] as const, registers });
      const failures = new Counter({ name: 'cti_webhook_failures_total', help: 'Events marked failed after their retries ran out.', registers });
      webhooks.on('attempt', (outcome) => {
        attempts.inc({ outcome });
        if (outcome === 'failed') failures.inc();
      });
    }
    new Gauge({
      name: 'cti_live_resources',
      help: 'Live call resources on this node by class and state.',
      labelNames: ['class', 'state'] as const,
      registers,
      collect() {
        this.reset();
        for (const { resourceClass, state, count } of resources.liveCounts().values()) this.set({ class: resourceClass, state }, count);
      },
    });
    const constructs = new Counter({
      name: 'cti_constructs_total',
      help: 'Resources accepted by class (both APIs).',
      labelNames: ['class'] as const,
      registers,
    });
    const releases = new Counter({
      name: 'cti_releases_total',
      help: 'Resources released by class and error code ("none" for a normal end).',
      labelNames: ['class', 'error_code'] as const,
      registers,
    });
    const setup = new Histogram({
      name: 'cti_setup_latency_seconds',
      help: 'Seconds from construct to the first answer, per class.',
      labelNames: ['class'] as const,
      buckets: SETUP_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'cti_engine_available',
      help: '1 when the telephony engine can place calls, else 0.',
      labelNames: ['engine'] as const,
      registers,
      collect() {
        this.set({ engine: engine.name }, engine.available ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cti_ws_connections',
      help: 'Open WebSocket connections.',
      registers,
      collect() {
        this.set(sources.wsConnections());
      },
    });
    resources.on('added', (r) => constructs.inc({ class: r.resourceClass }));
    resources.on('event', (e) => {
      if (e.name !== 'on_released') return;
      const released = e.params as ReleaseBase;
      releases.inc({ class: e.resourceClass, error_code: released.error?.code ?? 'none' });
      if (released.answer_time !== null) setup.observe({ class: e.resourceClass }, Math.max(0, released.answer_time - released.begin_time));
    });
  }

  /** The text exposition format and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
