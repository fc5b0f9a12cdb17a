/**
 * Renders `config/example.yaml` and `docs/configuration.md` from the schema, so neither can say
 * something the code does not do. `npm run gen:config-docs` writes them; a test fails when they drift.
 */
import { Document, isMap, isPair, isScalar, isSeq, type Node } from 'yaml';
import { configJsonSchema } from './problems.js';

type JsonNode = Record<string, unknown> & {
  properties?: Record<string, JsonNode>;
  additionalProperties?: JsonNode | boolean;
  items?: JsonNode;
  anyOf?: JsonNode[];
  required?: string[];
};

/** Names used for map keys in the example (records have no fixed keys). */
const exampleRecordKeys: Record<string, string> = { accounts: 'scanner' };

function branch(node: JsonNode): JsonNode {
  const inner = node.anyOf?.find((n) => n.type !== 'null');
  return inner ? { ...inner, ...node, anyOf: undefined } : node;
}

function exampleValue(node: JsonNode, key: string): unknown {
  const n = branch(node);
  if (n.example !== undefined && n.type !== 'object') return n.example;
  if (n.properties) {
    const out: Record<string, unknown> = {};
    for (const [k, child] of Object.entries(n.properties)) out[k] = exampleValue(child, k);
    return out;
  }
  if (typeof n.additionalProperties === 'object') {
    return { [exampleRecordKeys[key] ?? 'example']: exampleValue(n.additionalProperties, key) };
  }
  if (key === 'devices' && n.items) {
    // One device admitted by address: the example must validate as it stands, and a password hash is per site.
    const device = exampleValue(n.items, '') as Record<string, unknown>;
    return [{ ...device, username: null, passwordHash: null }];
  }
  if (n.default !== undefined) return n.default;
  return null;
}

function descriptions(node: JsonNode, prefix: string, out: Map<string, string>): void {
  const n = branch(node);
  if (n.description && prefix) out.set(prefix, String(n.description));
  for (const [k, child] of Object.entries(n.properties ?? {})) descriptions(child, prefix ? `${prefix}.${k}` : k, out);
  if (typeof n.additionalProperties === 'object') {
    const key = exampleRecordKeys[prefix] ?? 'example';
    descriptions(n.additionalProperties, `${prefix}.${key}`, out);
  }
  if (n.items) descriptions(n.items, `${prefix}[]`, out);
}

function attachComments(node: Node | null, prefix: string, text: Map<string, string>): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair) || !isScalar(pair.key)) continue;
      const path = prefix ? `${prefix}.${String(pair.key.value)}` : String(pair.key.value);
      const description = text.get(path);
      if (description) pair.key.commentBefore = ` ${description}`;
      attachComments(pair.value as Node | null, path, text);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) attachComments(item as Node, `${prefix}[]`, text);
  }
}

export function renderExampleYaml(): string {
  const schema = configJsonSchema() as JsonNode;
  const doc = new Document(exampleValue(schema, ''));
  const text = new Map<string, string>();
  descriptions(schema, '', text);
  attachComments(doc.contents as Node, '', text);
  doc.commentBefore =
    ' xoauth2-relay configuration: generated from src/config/schema.ts by `npm run gen:config-docs`; do not edit by hand.\n' +
    ' Secrets are never written here: name a file (clientSecretFile, privateKeyFile) or an environment variable instead.\n' +
    ' Device password hashes come from `xoauth2-relay hash-password`; add `username:` and `passwordHash:` to a device to require a login.';
  return doc.toString({ lineWidth: 0 });
}

interface Row {
  key: string;
  type: string;
  default: string;
  description: string;
}

function typeOf(n: JsonNode): string {
  if (n.enum) return (n.enum as unknown[]).map((v) => `\`${String(v)}\``).join(' \\| ');
  const t = n.type;
  if (Array.isArray(t)) return t.join(' \\| ');
  if (t === 'object' && typeof n.additionalProperties === 'object') return 'map';
  return typeof t === 'string' ? t : 'any';
}

function rows(node: JsonNode, prefix: string, out: Row[]): void {
  const n = branch(node);
  // Containers of list items and map entries get no row of their own: their fields carry the meaning.
  if (prefix && !prefix.endsWith('[]') && !prefix.endsWith('<name>')) {
    const nullable = node.anyOf?.some((x) => x.type === 'null') ? ' \\| null' : '';
    out.push({
      key: `\`${prefix}\``,
      type: typeOf(n) + nullable,
      default: n.default === undefined ? (n.required ? '' : '*(required)*') : `\`${JSON.stringify(n.default)}\``,
      description: [n.description, n.secret ? '**Secret reference**: masked in errors and logs.' : undefined].filter(Boolean).join(' ').replaceAll('|', '\\|'),
    });
  }
  const required = new Set(n.required ?? []);
  for (const [k, child] of Object.entries(n.properties ?? {})) {
    const before = out.length;
    rows(child, prefix ? `${prefix}.${k}` : k, out);
    const row = out[before];
    if (row && branch(child).default === undefined) row.default = required.has(k) ? '*(required)*' : '';
  }
  if (typeof n.additionalProperties === 'object') rows(n.additionalProperties, `${prefix}.<name>`, out);
  if (n.items && n.items.properties) rows(n.items, `${prefix}[]`, out);
}

export function renderConfigurationMarkdown(): string {
  const all: Row[] = [];
  rows(configJsonSchema() as JsonNode, '', all);
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run gen:config-docs`; do not edit by hand. -->',
    '',
    'One YAML file, found through `--config FILE`, else the environment variable `XOAUTH2_RELAY_CONFIG`, else `/etc/xoauth2-relay/config.yaml`.',
    'Relative file paths in it are resolved against the folder of the file. `xoauth2-relay check-config` lists every problem at once,',
    'each with its key, the value (secrets masked) and the fix. A commented example is in [`config/example.yaml`](../config/example.yaml).',
    '',
    'Secrets never go into this file: the client secret and private keys are named by file (`clientSecretFile`, `privateKeyFile`) or by',
    'environment variable (`clientSecretEnv`); the token store key comes from `XOAUTH2_RELAY_KEY`, a systemd credential named',
    '`xoauth2-relay-key`, or a key file created with mode 0600 in `stateDir` on first start.',
    '',
    '| key | type | default | description |',
    '|---|---|---|---|',
    ...all.map((r) => `| ${r.key} | ${r.type} | ${r.default} | ${r.description} |`),
    '',
  ];
  return lines.join('\n');
}
