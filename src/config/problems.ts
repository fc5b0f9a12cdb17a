/**
 * Turns schema issues and cross-field checks into problems an operator can act on:
 * the key path, the bad value (secrets masked), what is wrong and how to fix it.
 */
import { z } from 'zod';
import { byteSizeReadings } from './byte-size.js';
import { configSchema } from './schema.js';

export interface ConfigProblem {
  /** Dotted key path, e.g. `accounts.scanner.clientId` or `devices[0].allowFrom[1]`. */
  path: string;
  /** The offending value as shown to the operator (masked for secrets), or undefined when missing. */
  shown: string | undefined;
  message: string;
  hint: string | undefined;
}

type JsonNode = Record<string, unknown> & {
  properties?: Record<string, JsonNode>;
  additionalProperties?: JsonNode | boolean;
  items?: JsonNode;
  anyOf?: JsonNode[];
};

let jsonSchemaCache: JsonNode | undefined;
/** The schema as JSON Schema: descriptions, hints, examples and `secret` flags by key path. */
export function configJsonSchema(): JsonNode {
  jsonSchemaCache ??= z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonNode;
  return jsonSchemaCache;
}

/** The JSON-schema node at a key path, or undefined when the path is not part of the schema. */
export function schemaNodeAt(path: readonly PropertyKey[]): JsonNode | undefined {
  let node: JsonNode | undefined = configJsonSchema();
  for (const key of path) {
    if (!node) return undefined;
    node = unwrap(node);
    if (typeof key === 'number') node = node.items;
    else if (node.properties && typeof key === 'string' && key in node.properties) node = node.properties[key];
    else if (typeof node.additionalProperties === 'object') node = node.additionalProperties;
    else return undefined;
  }
  return node ? unwrap(node) : undefined;
}

function unwrap(node: JsonNode): JsonNode {
  if (node.anyOf) {
    const branch = node.anyOf.find((n) => n.type !== 'null');
    if (branch) return { ...branch, ...withoutAnyOf(node) };
  }
  return node;
}

function withoutAnyOf(node: JsonNode): JsonNode {
  const { anyOf: _ignored, ...rest } = node;
  return rest;
}

const secretLookingKey = /pass(word)?|secret|token|key$/i;

/** True when the value at this path must never be shown: schema `secret` fields and keys that look like secrets. */
export function isSecretPath(path: readonly PropertyKey[]): boolean {
  const node = schemaNodeAt(path);
  if (node?.secret === true) return true;
  const last = path[path.length - 1];
  return typeof last === 'string' && secretLookingKey.test(last) && !/File$|Env$/.test(last);
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out || '(top level)';
}

export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

export function showValue(input: unknown, path: readonly PropertyKey[]): string | undefined {
  const value = valueAt(input, path);
  if (value === undefined) return undefined;
  if (isSecretPath(path)) return '"****" (secret, not shown)';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Problems from a failed zod parse, with hints from the schema and suggestions for misspelt keys. */
export function problemsFromIssues(input: unknown, issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = Object.keys(schemaNodeAt(issue.path)?.properties ?? {});
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        const suggestion = closest(key, known);
        out.push({
          path: formatPath(path),
          shown: showValue(input, path),
          message: 'is not a known key',
          hint: suggestion ? `did you mean \`${suggestion}\`? Known keys here: ${known.join(', ')}` : `known keys here: ${known.join(', ')}`,
        });
      }
      continue;
    }
    const node = schemaNodeAt(issue.path);
    const value = valueAt(input, issue.path);
    const missing = value === undefined;
    if (node?.byteSize === true && typeof value === 'string') {
      out.push({ path: formatPath(issue.path), shown: showValue(input, issue.path), message: 'is not a size in bytes this relay can read', hint: byteSizeReadings(value) ?? 'write a number of bytes, or a size with a unit: 35MB (35000000) or 35MiB (36700160)' });
      continue;
    }
    out.push({
      path: formatPath(issue.path),
      shown: showValue(input, issue.path),
      message: missing ? 'is required but missing' : describeIssue(issue),
      hint: (node?.hint as string | undefined) ?? (node?.description ? `expected: ${String(node.description)}` : undefined),
    });
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `has the wrong type: expected ${issue.expected}`;
    case 'invalid_value':
      return `is not one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return `is too small (minimum ${String(issue.minimum)})`;
    case 'too_big':
      return `is too big (maximum ${String(issue.maximum)})`;
    case 'invalid_format':
      return `is not a valid ${issue.format}`;
    default:
      return issue.message.replace(/^Invalid input: /, 'is invalid: ');
  }
}

/** The known key nearest to a misspelt one (edit distance ≤ 3), for "did you mean". */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[b.length]!;
}

/** One line per problem, as `check-config` prints them. */
export function formatProblem(p: ConfigProblem): string {
  const value = p.shown === undefined ? '' : ` = ${p.shown}`;
  return `${p.path}${value}: ${p.message}${p.hint ? `\n    fix: ${p.hint}` : ''}`;
}
