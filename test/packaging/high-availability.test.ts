/**
 * The high-availability packaging, checked here without a cluster: every Kubernetes manifest validates against the
 * Kubernetes API schemas (kubernetes-models, generated from the published OpenAPI definitions), the compose file and
 * the relay configuration fit together, `haproxy -c` accepts the HAProxy configuration, and no file holds a secret.
 * Not verified here: that the images run under Docker or Kubernetes (no engine on this machine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { hashPassword } from '../../src/auth/password-hash.js';
import { checkConfigText } from '../../src/config/load.js';
import { createPki } from '../../src/sandbox/pki.js';

const root = fileURLToPath(new URL('../../packaging/', import.meta.url));
const models: Record<string, new (data: any) => { validate(): void }> = { 'apps/v1/StatefulSet': StatefulSet, 'v1/Service': Service, 'v1/Secret': Secret };

async function manifests(): Promise<Array<{ file: string; doc: any }>> {
  const dir = join(root, 'kubernetes');
  const out: Array<{ file: string; doc: any }> = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const d of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      assert.equal(d.errors.length, 0, `${file}: ${d.errors.join('; ')}`);
      const doc = d.toJS();
      if (doc) out.push({ file, doc });
    }
  }
  return out;
}

test('every Kubernetes manifest validates against the Kubernetes API schema', async () => {
  const docs = await manifests();
  assert.ok(docs.length >= 5);
  for (const { file, doc } of docs) {
    const Model = models[`${doc.apiVersion}/${doc.kind}`];
    assert.ok(Model, `${file}: ${doc.apiVersion} ${doc.kind} has a schema here`);
    assert.doesNotThrow(() => new Model(doc).validate(), `${file}: ${doc.kind} ${doc.metadata?.name}`);
  }
  // A broken manifest is caught (the check is not a formality).
  const broken = structuredClone(docs.find((d) => d.doc.kind === 'StatefulSet')!.doc);
  broken.spec.replicas = 'two';
  assert.throws(() => new StatefulSet(broken).validate());
});

test('the relay StatefulSet: a volume per pod for the spool, readiness on /readyz, the key from the Secret; Services select its pods', async () => {
  const docs = (await manifests()).map((d) => d.doc);
  const relay = docs.find((d) => d.kind === 'StatefulSet' && d.metadata.name === 'xoauth2-relay');
  const container = relay.spec.template.spec.containers[0];
  const state = relay.spec.volumeClaimTemplates.find((v: any) => v.metadata.name === 'state');
  assert.ok(state, 'a volume claim per pod');
  assert.equal(container.volumeMounts.find((m: any) => m.name === 'state').mountPath, '/var/lib/xoauth2-relay');
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  assert.equal(container.env.find((e: any) => e.name === 'XOAUTH2_RELAY_KEY').valueFrom.secretKeyRef.name, 'xoauth2-relay-secrets');
  for (const service of docs.filter((d) => d.kind === 'Service' && d.metadata.name.startsWith('xoauth2-relay'))) {
    assert.deepEqual(service.spec.selector, relay.spec.template.metadata.labels, `${service.metadata.name} selects the relay pods`);
    for (const port of service.spec.ports) assert.ok(container.ports.some((p: any) => p.name === port.targetPort), `${service.metadata.name} port ${port.name} targets a container port`);
  }
  const secret = docs.find((d) => d.kind === 'Secret');
  for (const value of Object.values(secret.stringData as Record<string, string>)) assert.match(value, /^<.*>$/, 'the example Secret holds placeholders only');
});

test('compose: two relays on one Redis behind HAProxy, each with its own state volume, secrets from files', async () => {
  const compose = parse(await readFile(join(root, 'high-availability', 'docker-compose.yml'), 'utf8'), { merge: true }); // compose applies YAML merge keys
  const { redis, haproxy } = compose.services;
  const relays = ['relay-a', 'relay-b'].map((n) => compose.services[n]);
  assert.ok(redis && haproxy && relays.every(Boolean));
  const stateVolumes = relays.map((r) => r.volumes.find((v: string) => v.endsWith(':/var/lib/xoauth2-relay')));
  assert.equal(new Set(stateVolumes).size, 2, 'each instance has its own spool volume');
  for (const r of relays) {
    assert.ok(r.volumes.includes('./relay.yaml:/etc/xoauth2-relay/config.yaml:ro'));
    assert.deepEqual(r.secrets, ['xoauth2-relay-key', 'redis-password']);
    assert.equal(r.environment.CREDENTIALS_DIRECTORY, '/run/secrets');
    assert.equal(r.environment.NODE_TLS_REJECT_UNAUTHORIZED, undefined, 'TLS checks are never switched off process-wide');
  }
  assert.ok(Object.values(compose.secrets as Record<string, { file: string }>).every((s) => s.file.startsWith('./secrets/')));
  assert.deepEqual(haproxy.ports, ['25:25', '587:587', '110:110', '143:143', '8025:8025']);
});

test('haproxy -c accepts the HAProxy configuration', (t) => {
  const probe = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    if (process.env.CI) assert.fail('CI needs haproxy (scripts/setup-debian.sh installs it)');
    return t.skip('haproxy is not installed');
  }
  const checked = spawnSync('haproxy', ['-c', '-f', join(root, 'high-availability', 'haproxy.cfg')], { encoding: 'utf8' });
  assert.equal(checked.status, 0, checked.stderr + checked.stdout);
});

test('the cluster configuration passes check-config once its placeholders are filled', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-ha-'));
  try {
    const config = parse(await readFile(join(root, 'high-availability', 'relay.yaml'), 'utf8'));
    const pki = await createPki();
    const cert = await pki.issueServerCertificate(['relay.example']);
    await writeFile(join(dir, 'tls.crt'), cert.certPem);
    await writeFile(join(dir, 'tls.key'), cert.keyPem);
    await writeFile(join(dir, 'redis-password'), 'not-a-real-password\n');
    const hash = await hashPassword('a-device-password');
    config.stateDir = join(dir, 'state');
    config.tls = { ...config.tls, certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
    config.tokenStore.passwordFile = join(dir, 'redis-password');
    config.devices[0].passwordHash = hash;
    config.admin.passwordHash = hash;
    const checked = checkConfigText(stringify(config), join(dir, 'relay.yaml'), {});
    assert.ok(checked.ok, JSON.stringify(!checked.ok && checked.problems));
    assert.equal(checked.loaded.config.tokenStore.kind, 'redis');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
