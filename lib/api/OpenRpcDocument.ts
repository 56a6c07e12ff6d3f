/** The parts of an OpenRPC 1.3 document this project reads (plus its `x-events` extension). */

export type JsonSchema = Record<string, unknown>;

export interface ContentDescriptor {
  readonly name: string;
  readonly summary?: string;
  readonly description?: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
}

export interface ErrorObject {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

export interface MethodObject {
  readonly name: string;
  readonly summary?: string;
  readonly description?: string;
  readonly paramStructure?: 'by-name' | 'by-position' | 'either';
  readonly params: readonly ContentDescriptor[];
  readonly result: ContentDescriptor;
  readonly errors?: ReadonlyArray<{ readonly $ref: string }>;
}

/** A server-to-client notification; `params` is the schema of its by-name params object. */
export interface EventObject {
  readonly name: string;
  readonly summary?: string;
  readonly params: JsonSchema;
}

export interface OpenRpcDocument {
  readonly openrpc: string;
  readonly info: { readonly title: string; readonly version: string; readonly description?: string };
  readonly methods: readonly MethodObject[];
  readonly 'x-events': readonly EventObject[];
  readonly components: {
    readonly schemas: Readonly<Record<string, JsonSchema>>;
    readonly errors: Readonly<Record<string, ErrorObject>>;
  };
}
