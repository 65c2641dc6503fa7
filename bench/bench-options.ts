/**
 * What the standalone benchmark scripts share: the repository root, their `--name value` / `--flag`
 * arguments, number formatting and percentiles (the harness itself uses interleave.ts's summaries).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/bench/). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const argv = process.argv.slice(2);

/** The value after `--name` on the command line, if given. */
export function arg(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Whether `--name` is on the command line. */
export function flag(name: string): boolean {
  return argv.includes(`--${name}`);
}

/** A number with thousands separators and `d` decimals. */
export function fmt(x: number, d = 0): string {
  return x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
}

/** The p-quantile (0..1) of xs, nearest rank. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

/** The script's arguments as given (for the command line recorded with its results). */
export const ARGS: readonly string[] = argv;

/**
 * A standalone benchmark's result: a dated heading with the command, a line about the run, and a table,
 * printed and appended to the `--out FILE` when given.
 */
export function emitTable(command: string, about: string, header: string[], align: string[], rows: string[][]): void {
  const text = [
    `### ${new Date().toISOString()} — \`${command} ${ARGS.join(' ')}\``,
    '',
    about,
    '',
    `| ${header.join(' | ')} |`,
    `|${align.join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ].join('\n');
  process.stdout.write(text + '\n');
  const out = arg('out');
  if (out) fs.appendFileSync(out, text + '\n');
}
