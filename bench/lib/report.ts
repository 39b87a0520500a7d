import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Markdown that is printed as it is produced and written to a file at the end. */
export class Report {
  private readonly lines: string[] = [];

  add(...lines: string[]): void {
    for (const line of lines) {
      this.lines.push(line);
      process.stdout.write(`${line}\n`);
    }
  }

  table(header: string[], rows: Array<Array<string | number>>, align?: Array<'l' | 'r'>): void {
    const cells = [header, ...rows.map((row) => row.map(String))];
    const widths = header.map((_, i) => Math.max(3, ...cells.map((row) => (row[i] ?? '').length)));
    const pad = (text: string, i: number) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? text.padEnd(widths[i]!) : text.padStart(widths[i]!));
    const line = (row: string[]) => `| ${row.map((c, i) => pad(c, i)).join(' | ')} |`;
    const rule = `|${widths.map((w, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`;
    this.add(line(cells[0]!), rule, ...cells.slice(1).map(line), '');
  }

  write(file: string): void {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${this.lines.join('\n')}\n`);
  }
}

/** Progress goes to stderr so that stdout carries only the Markdown. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export const fixed = (value: number | undefined, digits = 1): string => (value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits));
export const int = (value: number): string => Math.round(value).toLocaleString('en-US');
export const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
