import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createUpstreamTls } from '../../support/scripted-upstream.js';
import { startHarness } from './harness.js';

const MB = 1024 * 1024;

/** Writes a scan-like message of about `bytes`: headers, then base64 lines of 76 characters (CRLF), as MIME does. */
async function writeLargeMessage(path: string, bytes: number): Promise<string> {
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  const put = async (chunk: Buffer) => {
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  };
  await put(Buffer.from('From: scanner@contoso.example\r\nTo: alice@contoso.example\r\nSubject: 30 MB scan\r\nMIME-Version: 1.0\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n'));
  const linesPerChunk = 1000;
  for (let written = 0; written < bytes; written += linesPerChunk * 78) {
    const b64 = randomBytes(57 * linesPerChunk).toString('base64');
    const lines: string[] = [];
    for (let i = 0; i < linesPerChunk; i += 1) lines.push(b64.slice(i * 76, (i + 1) * 76));
    await put(Buffer.from(`${lines.join('\r\n')}\r\n`));
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

test('a 30 MB message is spooled and delivered byte-identical, streaming: RSS grows well under 64 MB', { timeout: 120_000 }, async (t) => {
  const tls = await createUpstreamTls();
  const h = await startHarness({ tls, limits: {}, start: false });
  try {
    const source = join(h.stateDir, 'source.eml');
    const sha = await writeLargeMessage(source, Number(process.env.LARGE_MB ?? 30) * MB);

    (globalThis as { gc?: () => void }).gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const started = Date.now();
      const { id, size } = await h.spool.commit(
        { device: 'floor2-mfp', account: 'scanner', mailFrom: 'scanner@contoso.example', rcptTo: ['alice@contoso.example'], remoteAddress: '192.168.10.50', smtpUtf8: false },
        createReadStream(source),
        { maxBytes: 200 * MB }, // LARGE_MB=90 turns this into a benchmark
      );
      const committedMs = Date.now() - started;
      await h.worker.start();
      await h.waitForEvent('delivered', id, 60_000);
      const deliveredMs = Date.now() - started - committedMs;
      peak = Math.max(peak, process.memoryUsage().rss);

      const [received] = h.upstream.received;
      assert.equal(received?.size, size);
      assert.equal(received?.sha256, sha, 'byte-identical at the upstream');
      const growthMb = (peak - before) / MB;
      t.diagnostic(`${(size / MB).toFixed(1)} MB: commit ${committedMs} ms (${((size / MB) / (committedMs / 1000)).toFixed(0)} MB/s), delivery over STARTTLS ${deliveredMs} ms (${((size / MB) / (deliveredMs / 1000)).toFixed(0)} MB/s), RSS ${(before / MB).toFixed(0)} MB → peak ${(peak / MB).toFixed(0)} MB (+${growthMb.toFixed(1)} MB, worker and upstream in one process)`);
      assert.ok(growthMb < 64, `RSS grew ${growthMb.toFixed(1)} MB`);
    } finally {
      clearInterval(sampler);
    }
  } finally {
    await h.close();
  }
});
