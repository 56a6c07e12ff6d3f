import type { PartyContext, ResourceClass, ResourceContext } from '../api/generated/types.js';
import type { ResourceEvent } from '../resources/ResourceRegistry.js';
import { unixSeconds } from '../util/Clock.js';
import type { LeftLive } from './CdrStore.js';

/**
 * The on_released of a resource a previous run of this node left live
 * (`internal`, "server restarted", dropped by `sys`) and its CDR (issue 9).
 *
 * The CDR starts from the context stored with the resource's last committed
 * on_progress: numbers, gateway, SIP status, dial/ring/answer times of each
 * party as known then (nothing newer survives a crash). Every party still
 * in a call ends at `endMs`, the recovery time, ended by `sys`: the restart
 * is when this node BYEs/CANCELs what is left (embedded engine) and so the
 * latest the call can have lasted; a far end that hung up during the outage
 * ended earlier, which no record here can know (docs/operations.md). A
 * party never dialled is RELEASED without an end time, as at a normal end.
 * No stored context (a crash before the first dial was committed): no parties.
 */
export function restartRelease(r: LeftLive & { readonly resourceClass: ResourceClass }, endMs: number): ResourceEvent {
  const end = unixSeconds(endMs);
  const begin = unixSeconds(r.createdAt);
  const stored = r.context;
  const parties = (stored?.parties ?? []).map((p) => endParty(p, end));
  const redirects = parties.flatMap((p) => p.redirects ?? []);
  const answerTime = stored?.answer_time ?? null;
  const connectTime = stored?.connect_time ?? null;
  const released = {
    res_id: r.resId,
    error: { code: 'internal', message: 'server restarted' },
    begin_time: begin,
    answer_time: answerTime,
    ...(r.resourceClass === 'ext.duo_callback' ? { connect_time: connectTime } : {}),
    end_time: end,
    dropped_by: 'sys',
    user_data: r.userData,
    ...(redirects.length > 0 ? { redirects } : {}),
  };
  const context: ResourceContext = {
    res_id: r.resId,
    class: r.resourceClass,
    state: 'Released',
    user_data: r.userData,
    begin_time: begin,
    answer_time: answerTime,
    connect_time: connectTime,
    parties,
  };
  return {
    resId: r.resId,
    resourceClass: r.resourceClass,
    name: 'on_released',
    accountId: r.accountId,
    ownerId: r.ownerId,
    params: released,
    context,
  };
}

/** A party as the restart ends it: one still in a call ends now, by `sys`; one that had ended keeps its record. */
function endParty(p: PartyContext, end: number): PartyContext {
  if (p.state === 'RELEASED') return p;
  if (p.state === 'NONE') return { ...p, state: 'RELEASED' };
  return { ...p, state: 'RELEASED', end_time: end, release_initiator: 'sys' };
}
