/**
 * A strict JSON (RFC 8259) reader and writer for config.json. Two things JSON.parse cannot do: report a
 * syntax error by line and column, and keep 64-bit integers exact (rlimits are uint64 and
 * RLIM_INFINITY is 18446744073709551615). Integers beyond Number.MAX_SAFE_INTEGER become bigints.
 */
import { ConfigError } from './config-error.js';

/** A JSON value as read by {@link parseConfigJson}: like JSON.parse's, but big integers are bigints. */
export type ConfigJsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | ConfigJsonValue[]
  | { [key: string]: ConfigJsonValue };

/** Deepest nesting accepted (config.json is shallow; this only stops runaway input). */
const MAX_DEPTH = 512;

class JsonSyntaxError extends Error {
  constructor(readonly offset: number, reason: string) {
    super(reason);
  }
}

/** 1-based line and column of `offset` in `text`. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function showChar(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x20 ? `U+${code.toString(16).padStart(4, '0')}` : JSON.stringify(c);
}

class Reader {
  private pos = 0;

  constructor(private readonly text: string) {
    if (text.charCodeAt(0) === 0xfeff) this.pos = 1; // a leading byte-order mark is allowed by RFC 8259
  }

  parseDocument(): ConfigJsonValue {
    this.skipSpace();
    const v = this.value(0);
    this.skipSpace();
    if (this.pos < this.text.length) this.fail(`unexpected ${showChar(this.text[this.pos])} after the JSON value`);
    return v;
  }

  private fail(reason: string, at = this.pos): never {
    throw new JsonSyntaxError(at, reason);
  }

  private skipSpace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else break;
    }
  }

  private value(depth: number): ConfigJsonValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    if (this.pos >= this.text.length) this.fail('unexpected end of input, expected a value');
    const c = this.text[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail(`unexpected ${showChar(c)}, expected a value`);
  }

  private object(depth: number): ConfigJsonValue {
    const out: { [key: string]: ConfigJsonValue } = {};
    this.pos++; // {
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '"') this.expected('a property name in double quotes');
      const key = this.string();
      this.skipSpace();
      if (this.text[this.pos] !== ':') this.expected('":" after a property name');
      this.pos++;
      this.skipSpace();
      const v = this.value(depth + 1);
      // defineProperty, so a "__proto__" key is an ordinary property (as with JSON.parse).
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.skipSpace();
      const sep = this.text[this.pos];
      if (sep === ',') this.pos++;
      else if (sep === '}') {
        this.pos++;
        return out;
      } else this.expected('"," or "}" after a property value');
    }
  }

  private array(depth: number): ConfigJsonValue {
    const out: ConfigJsonValue[] = [];
    this.pos++; // [
    this.skipSpace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      out.push(this.value(depth + 1));
      this.skipSpace();
      const sep = this.text[this.pos];
      if (sep === ',') this.pos++;
      else if (sep === ']') {
        this.pos++;
        return out;
      } else this.expected('"," or "]" after an array element');
    }
  }

  private expected(what: string): never {
    if (this.pos >= this.text.length) this.fail(`unexpected end of input, expected ${what}`);
    return this.fail(`unexpected ${showChar(this.text[this.pos])}, expected ${what}`);
  }

  private string(): string {
    const t = this.text;
    const start = this.pos;
    this.pos++; // opening quote
    let out = '';
    let chunk = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail('unterminated string', start);
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(chunk, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail(`control character ${showChar(t[this.pos])} in a string (escape it)`);
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(chunk, this.pos);
      const e = t[this.pos + 1];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && e in simple) {
        out += simple[e];
        this.pos += 2;
      } else if (e === 'u') {
        const hex = t.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.fail('invalid \\u escape (expected four hex digits)');
        out += String.fromCharCode(parseInt(hex, 16));
        this.pos += 6;
      } else if (e === undefined) {
        this.fail('unterminated string', start);
      } else {
        this.fail(`invalid escape "\\${e}" in a string`);
      }
      chunk = this.pos;
    }
  }

  private number(): number | bigint {
    const m = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.text.slice(this.pos, this.pos + 400));
    if (m === null) return this.fail('invalid number');
    const lit = m[0];
    const next = this.text[this.pos + lit.length];
    if (next !== undefined && /[0-9.eE+\-]/.test(next)) this.fail('invalid number', this.pos + lit.length);
    this.pos += lit.length;
    const isInteger = m[1] === undefined && m[2] === undefined;
    const n = Number(lit);
    if (isInteger && !Number.isSafeInteger(n)) return BigInt(lit);
    return n;
  }
}

/**
 * Parse config.json text. Integers beyond Number.MAX_SAFE_INTEGER come back as bigints; a syntax error
 * throws a {@link ConfigError} whose one issue is `config.json: invalid JSON at line L column C: reason`.
 *
 * @param text - the file's contents
 * @param source - the name used as the issue path (default "config.json")
 */
export function parseConfigJson(text: string, source = 'config.json'): ConfigJsonValue {
  try {
    return new Reader(text).parseDocument();
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    const { line, column } = lineColumn(text, e.offset);
    throw new ConfigError([{ path: source, message: `invalid JSON at line ${line} column ${column}: ${e.message}` }]);
  }
}

/**
 * Serialise a value like JSON.stringify, writing bigints as plain JSON integers (so a parsed spec with
 * 64-bit rlimits round-trips). Undefined properties and functions are left out, as JSON.stringify does.
 *
 * @param value - the value to write
 * @param indent - spaces per nesting level (0 for one line)
 */
export function stringifyConfigJson(value: unknown, indent = 0): string {
  const marker = '\u0000bigint:';
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${marker}${v.toString()}` : v), indent);
  return text.replace(/"\\u0000bigint:(-?[0-9]+)"/g, '$1');
}
