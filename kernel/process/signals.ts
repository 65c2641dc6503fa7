/**
 * Signal names and numbers (x86_64 Linux), as kill(1) and runc accept them: "TERM", "SIGTERM", "RTMIN+3" or a
 * number, and the name of a number for messages. Plain data and pure functions.
 */

/** Signal numbers by name (without SIG), as kill(1) and runc accept them. */
export const SIGNALS: Readonly<Record<string, number>> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11,
  USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21,
  TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** Parse a signal given as a name ("TERM", "SIGTERM", "RTMIN+3") or number; undefined when invalid. */
export function parseSignal(s: string): number | undefined {
  const t = s.trim().toUpperCase();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return n >= 1 && n <= 64 ? n : undefined;
  }
  const name = t.startsWith('SIG') ? t.slice(3) : t;
  if (name in SIGNALS) return SIGNALS[name];
  const rt = /^RTM(IN|AX)([+-]\d+)?$/.exec(name);
  if (rt) {
    const n = (rt[1] === 'IN' ? 34 : 64) + Number(rt[2] ?? 0);
    return n >= 34 && n <= 64 ? n : undefined;
  }
  return undefined;
}

/** Name of a signal number ("SIGTERM"), for messages. */
export function signalName(n: number): string {
  const e = Object.entries(SIGNALS).find(([, v]) => v === n);
  if (e) return `SIG${e[0]}`;
  if (n >= 34 && n <= 64) return `SIGRTMIN+${n - 34}`;
  return `signal ${n}`;
}
