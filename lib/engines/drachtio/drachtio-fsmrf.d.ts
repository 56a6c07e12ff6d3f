/** The parts of drachtio-fsmrf 4.1.2 (untyped CommonJS) this engine uses. */
declare module 'drachtio-fsmrf' {
  import { EventEmitter } from 'node:events';
  import type Srf from 'drachtio-srf';

  namespace Mrf {
    interface ConnectOptions {
      address: string;
      port?: number;
      secret?: string;
      /** Where our outbound event socket listens; FreeSWITCH must reach it. */
      listenAddress?: string;
      profile?: string;
    }

    interface PlaybackResult {
      playbackSeconds?: string;
      playbackMilliseconds?: string;
    }

    /** One FreeSWITCH channel, controlled over its own outbound event socket. */
    class Endpoint extends EventEmitter {
      readonly uuid: string;
      readonly local: { sdp: string; mediaIp?: string; mediaPort?: string };
      readonly connected: boolean;
      /** The SIP dialog between drachtio-server and FreeSWITCH. */
      readonly dialog: Srf.Dialog;
      /** A list plays in one `playback` (joined with `!`); rejects with 'File Not Found'. */
      play(file: string | string[]): Promise<PlaybackResult>;
      /** uuid_bridge with the other endpoint. */
      bridge(other: Endpoint | string): Promise<void>;
      /** uuid_transfer -both park inline. */
      unbridge(): Promise<void>;
      /** An API command over this endpoint's own outbound event socket; resolves with FreeSWITCH's reply event. */
      api(command: string, args?: string): Promise<{ getBody(): string }>;
      /** re-INVITE FreeSWITCH with the far end's SDP. */
      modify(sdp: string): Promise<string>;
      /** hangup, then waits for FreeSWITCH's BYE. */
      destroy(): Promise<void>;
      on(event: 'destroy', listener: (info?: { reason?: string }) => void): this;
      /** FreeSWITCH's DTMF event on the channel (RFC 2833/4733, INFO it received, or inband when enabled). */
      on(event: 'dtmf', listener: (event: { dtmf?: unknown; duration?: unknown; source?: unknown }) => void): this;
    }

    class MediaServer extends EventEmitter {
      readonly address: string;
      /** The inbound event socket; emits 'error' and 'esl::end'. */
      readonly conn: EventEmitter;
      connected(): boolean;
      /** Without remoteSdp: a 3pcc INVITE, FreeSWITCH offers (endpoint.local.sdp). */
      createEndpoint(opts?: { remoteSdp?: string; headers?: Record<string, string> }): Promise<Endpoint>;
      /** An API command over the inbound event socket; resolves with the reply body. */
      api(command: string): Promise<string>;
      disconnect(): void;
      on(event: 'end', listener: () => void): this;
    }
  }

  class Mrf extends EventEmitter {
    constructor(srf: Srf);
    connect(opts: Mrf.ConnectOptions): Promise<Mrf.MediaServer>;
  }

  export = Mrf;
}
