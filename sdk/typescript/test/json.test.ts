// Exact JSON: amounts keep every digit in both directions; everything else
// parses like JSON.parse.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { amountText, JSONParseError, parse, plainDecimal, stringify } from '../src/json.js';
import { errorFromResponse, parseRetryAfter } from '../src/errors.js';
import { AssistivAuthError, AssistivError, AssistivPaymentRequiredError, AssistivRateLimitError } from '../src/index.js';

describe('parse', () => {
  it('keeps amount members as their source text', () => {
    const v = parse('{"balance_usd":123456789.123456789,"amount_usd":0.000000001,"markup_pct":20.5,"sequence":12,"n":1.5}') as Record<string, unknown>;
    assert.deepEqual(v, { balance_usd: '123456789.123456789', amount_usd: '0.000000001', markup_pct: '20.5', sequence: 12, n: 1.5 });
  });

  it('reaches nested objects and arrays, but not metadata', () => {
    const v = parse('{"data":[{"amount_usd":-2.5}],"budget":{"available_usd":0},"metadata":{"price_usd":1.25,"x":[{"cost_usd":3}]}}');
    assert.deepEqual(v, { data: [{ amount_usd: '-2.5' }], budget: { available_usd: '0' }, metadata: { price_usd: 1.25, x: [{ cost_usd: 3 }] } });
  });

  it('agrees with JSON.parse on everything else', () => {
    const samples = [
      '{"a":"x\\"y\\\\z\\u00e9\\n\\t\\/","b":[true,false,null,-0.5e3,1E2],"c":{}}',
      '[]',
      ' [ 1 , "two" , { "three" : [ ] } ] ',
      '"\\ud83d\\ude00"',
      '{"__proto__":{"polluted":true}}',
    ];
    for (const s of samples) assert.deepEqual(parse(s), JSON.parse(s), s);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('refuses what JSON.parse refuses', () => {
    for (const s of ['', '{', '{"a":1,}', '[1 2]', '01', '-', '1.', '.5', 'tru', '"\u0001"', '"\\x"', '{"a" 1}', '{} {}', "{'a':1}", '"abc']) {
      assert.throws(() => parse(s), JSONParseError, s);
      assert.throws(() => JSON.parse(s), SyntaxError, s);
    }
  });
});

describe('stringify', () => {
  it('writes amount strings as JSON numbers, digit for digit', () => {
    assert.equal(stringify({ amount_usd: '123456789.123456789', reason: 'x' }), '{"amount_usd":123456789.123456789,"reason":"x"}');
    assert.equal(stringify({ amount_usd: '1.0000000001' }), '{"amount_usd":1.0000000001}');
    assert.equal(stringify({ default_budget: { amount_usd: '0.5', period: 'daily' } }), '{"default_budget":{"amount_usd":0.5,"period":"daily"}}');
  });

  it('writes numbers without exponent and without rounding', () => {
    assert.equal(stringify({ amount_usd: 1e-9 }), '{"amount_usd":0.000000001}');
    assert.equal(stringify({ amount_usd: 0.1 }), '{"amount_usd":0.1}');
    assert.equal(stringify({ amount_usd: 5 }), '{"amount_usd":5}');
    assert.equal(stringify({ amount_usd: '2.5e-3' }), '{"amount_usd":0.0025}');
    assert.equal(stringify({ amount_usd: 1e21 }), '{"amount_usd":1000000000000000000000}');
  });

  it('leaves metadata and other members alone, drops undefined', () => {
    assert.equal(stringify({ metadata: { price_usd: '1.5' }, external_id: 'u', display_name: undefined }), '{"metadata":{"price_usd":"1.5"},"external_id":"u"}');
    assert.equal(stringify({ a: [1, undefined, 'x'], b: null, c: true }), '{"a":[1,null,"x"],"b":null,"c":true}');
  });

  it('refuses amounts that are not finite decimals', () => {
    for (const bad of ['', 'abc', '1,5', '0x10', ' ', '1.', '+1', 'NaN', '5 USD']) {
      assert.throws(() => stringify({ amount_usd: bad }), TypeError, bad);
    }
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => amountText(bad, 'amount_usd'), TypeError);
  });

  it('plainDecimal moves the point, never changes a digit', () => {
    const cases: Array<[string, string]> = [
      ['1e-7', '0.0000001'], ['1.5e3', '1500'], ['12.5e-1', '1.25'], ['-3.25e-2', '-0.0325'], ['7', '7'], ['0e5', '0'], ['1.000e2', '100'],
    ];
    for (const [i, o] of cases) assert.equal(plainDecimal(i), o, i);
  });
});

describe('error mapping', () => {
  const body = (code: string) => ({ error: { type: 't', code, message: 'm', request_id: 'req_1' } });
  it('maps statuses to classes with the structured fields', () => {
    const h = new Headers({ 'retry-after': '7', 'x-request-id': 'req_1' });
    const cases: Array<[number, string, new (...a: any[]) => AssistivError]> = [
      [401, 'invalid_api_key', AssistivAuthError],
      [403, 'wrong_key_type', AssistivAuthError],
      [403, 'platform_mismatch', AssistivAuthError],
      [403, 'forbidden_field', AssistivError],
      [402, 'wallet_insufficient', AssistivPaymentRequiredError],
      [429, 'rate_limited', AssistivRateLimitError],
      [500, 'internal_error', AssistivError],
    ];
    for (const [status, code, cls] of cases) {
      const e = errorFromResponse(status, h, body(code));
      assert.equal(e.constructor, cls, `${status} ${code}`);
      assert.equal(e.name, cls.name);
      assert.equal(e.status, status);
      assert.equal(e.code, code);
      assert.equal(e.type, 't');
      assert.equal(e.requestId, 'req_1');
    }
    assert.equal((errorFromResponse(429, h, body('rate_limited')) as AssistivRateLimitError).retryAfter, 7);
    const bare = errorFromResponse(502, new Headers({ 'x-request-id': 'req_2' }), undefined);
    assert.equal(bare.code, 'http_502');
    assert.equal(bare.requestId, 'req_2');
  });

  it('reads Retry-After as seconds or a date', () => {
    const now = Date.parse('2026-05-01T00:00:00Z');
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': '3' }), now), 3);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'Fri, 01 May 2026 00:00:10 GMT' }), now), 10);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'soon' }), now), undefined);
    assert.equal(parseRetryAfter(new Headers(), now), undefined);
  });
});
