// Exact JSON for money. The gateway writes every amount as a JSON number in
// USD with up to 9 decimals (integer nano-USD inside); JSON.parse would turn
// 123456789.123456789 into a float and lose digits. This module parses
// responses keeping the source text of amount members as decimal strings,
// and serializes request bodies writing decimal strings as JSON numbers,
// digit for digit.

/** A USD amount as a decimal string, exactly as the gateway wrote it ("5", "0.000000001"). */
export type Decimal = string;

/** An amount the SDK sends: a decimal string or a number, written as given. */
export type AmountInput = string | number;

/** Members whose numbers are amounts (kept as decimal strings). */
export function isAmountKey(key: string): boolean {
  return key.endsWith('_usd') || key === 'markup_pct';
}

/** Members whose content is the caller's own JSON, left untouched. */
const opaqueKeys = new Set(['metadata']);

const jsonNumber = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * plainDecimal rewrites a JSON number's text without an exponent
 * ("1e-7" → "0.0000001"), moving the decimal point only: no digit changes.
 */
export function plainDecimal(text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?[eE]([+-]?\d+)$/.exec(text);
  if (!m) return text;
  const [, sign, int, frac = '', expText] = m as unknown as [string, string, string, string | undefined, string];
  const exp = Number(expText);
  let digits = int + frac;
  let point = int.length + exp;
  if (point <= 0) {
    digits = '0'.repeat(1 - point) + digits;
    point = 1;
  } else if (point > digits.length) {
    digits = digits + '0'.repeat(point - digits.length);
  }
  let whole = digits.slice(0, point).replace(/^0+(?=\d)/, '');
  const rest = digits.slice(point).replace(/0+$/, '');
  if (whole === '') whole = '0';
  const out = rest === '' ? whole : `${whole}.${rest}`;
  return out === '0' ? '0' : sign + out;
}

/** amountText returns the JSON text of an amount, refusing what is not a finite decimal. */
export function amountText(v: AmountInput, field: string): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`${field} must be a finite number`);
    return plainDecimal(JSON.stringify(v));
  }
  if (typeof v === 'string') {
    const t = v.trim();
    if (!jsonNumber.test(t)) throw new TypeError(`${field} must be a decimal number such as "5" or "0.25", not ${JSON.stringify(v)}`);
    return plainDecimal(t);
  }
  throw new TypeError(`${field} must be a decimal string or a number`);
}

/**
 * stringify serializes a request body like JSON.stringify, except that
 * amount members (…_usd, markup_pct) given as decimal strings or numbers are
 * written as JSON numbers with exactly their digits. undefined members are
 * left out; metadata is serialized as the caller gave it.
 */
export function stringify(value: unknown): string {
  return write(value, '', false);
}

function write(v: unknown, key: string, opaque: boolean): string {
  if (!opaque && isAmountKey(key) && (typeof v === 'string' || typeof v === 'number')) {
    return amountText(v, key);
  }
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`${key || 'value'} must be a finite number`);
    return JSON.stringify(v);
  }
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) {
    return '[' + v.map((x) => (x === undefined || typeof x === 'function' ? 'null' : write(x, '', opaque))).join(',') + ']';
  }
  if (typeof v === 'object') {
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      return write((v as { toJSON: () => unknown }).toJSON(), key, opaque);
    }
    const parts: string[] = [];
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
      parts.push(JSON.stringify(k) + ':' + write(x, k, opaque || opaqueKeys.has(k)));
    }
    return '{' + parts.join(',') + '}';
  }
  throw new TypeError(`cannot serialize ${typeof v} as JSON`);
}

/** JSONParseError is a malformed JSON text. */
export class JSONParseError extends SyntaxError {
  constructor(message: string, readonly offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = 'JSONParseError';
  }
}

/**
 * parse parses JSON text like JSON.parse, except that numbers of amount
 * members (…_usd, markup_pct) outside metadata become decimal strings with
 * the exact text the sender wrote.
 */
export function parse(text: string): unknown {
  const p = new Parser(text);
  p.space();
  const v = p.value('', false);
  p.space();
  if (p.i !== text.length) p.fail('unexpected data after the JSON value');
  return v;
}

class Parser {
  i = 0;
  constructor(private readonly s: string) {}

  fail(msg: string): never {
    throw new JSONParseError(msg, this.i);
  }

  space(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.i++;
    }
  }

  value(key: string, opaque: boolean): unknown {
    const c = this.s[this.i];
    switch (c) {
      case '{':
        return this.object(opaque);
      case '[':
        return this.array(opaque);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default: {
        const text = this.number();
        return !opaque && isAmountKey(key) ? text : Number(text);
      }
    }
  }

  literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.i)) this.fail('unexpected token');
    this.i += word.length;
    return v;
  }

  number(): string {
    const m = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    m.lastIndex = this.i;
    const r = m.exec(this.s);
    if (!r || r[0] === '' || r[0] === '-') this.fail('unexpected token');
    this.i += r[0].length;
    return r[0];
  }

  string(): string {
    const s = this.s;
    this.i++; // opening quote
    let out = '';
    let start = this.i;
    for (;;) {
      if (this.i >= s.length) this.fail('unterminated string');
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        out += s.slice(start, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail('control character in string');
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += s.slice(start, this.i);
      const e = s[this.i + 1];
      this.i += 2;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = s.slice(this.i, this.i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 4;
          break;
        }
        default:
          this.i -= 1;
          this.fail('bad escape');
      }
      start = this.i;
    }
  }

  array(opaque: boolean): unknown[] {
    this.i++;
    const out: unknown[] = [];
    this.space();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      this.space();
      out.push(this.value('', opaque));
      this.space();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') {
        this.i--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  object(opaque: boolean): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = {};
    this.space();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.space();
      if (this.s[this.i] !== '"') this.fail('expected a member name');
      const k = this.string();
      this.space();
      if (this.s[this.i] !== ':') this.fail("expected ':'");
      this.i++;
      this.space();
      const v = this.value(k, opaque || opaqueKeys.has(k));
      if (k === '__proto__') {
        Object.defineProperty(out, k, { value: v, enumerable: true, configurable: true, writable: true });
      } else {
        out[k] = v;
      }
      this.space();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') {
        this.i--;
        this.fail("expected ',' or '}'");
      }
    }
  }
}
