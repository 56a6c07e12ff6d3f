/** The bench's result table: one row per scenario and metric, server next to the baseline of the same run. */
export interface Row {
  readonly scenario: string;
  readonly metric: string;
  readonly server: string;
  readonly baseline: string;
  readonly target: string;
  /** undefined: informational, no target. */
  readonly pass?: boolean;
}

const HEADERS = ['scenario', 'metric', 'server', 'baseline', 'target', 'pass/fail'] as const;

export class Table {
  readonly rows: Row[] = [];

  add(row: Row): void {
    this.rows.push(row);
  }

  get allPassed(): boolean {
    return this.rows.every((r) => r.pass !== false);
  }

  /** Markdown, so the same text goes to the terminal and into docs/performance.md. */
  render(): string {
    const cells = this.rows.map((r) => [r.scenario, r.metric, r.server, r.baseline, r.target, r.pass === undefined ? '' : r.pass ? 'PASS' : 'FAIL']);
    const widths = HEADERS.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: readonly string[]): string => `| ${c.map((s, i) => s.padEnd(widths[i]!)).join(' | ')} |`;
    return [line(HEADERS), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
  }
}
