/**
 * The parent's handle on `relay-child.ts`: forks it with tsx, starts the listeners, reads its memory.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { ChildReply, ChildRequest } from './relay-child.js';

const script = fileURLToPath(new URL('./relay-child.ts', import.meta.url));

export class RelayChild {
  private constructor(
    private readonly child: ChildProcess,
    readonly imapPort: number,
    readonly pop3Port: number,
  ) {}

  static async start(input: Omit<Extract<ChildRequest, { type: 'start' }>, 'type'>): Promise<RelayChild> {
    const child = fork(script, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = once(child, 'message') as Promise<[ChildReply]>;
    child.send({ type: 'start', ...input } satisfies ChildRequest);
    const [reply] = await ready;
    if (reply.type !== 'ready') throw new Error(`relay child: unexpected ${JSON.stringify(reply)}`);
    return new RelayChild(child, reply.imapPort, reply.pop3Port);
  }

  /** Starts a peak window; resolves the RSS now. */
  async mark(): Promise<number> {
    const reply = await this.ask({ type: 'mark' });
    if (reply.type !== 'marked') throw new Error('relay child: no mark');
    return reply.rss;
  }

  /** The highest RSS since mark(). */
  async peak(): Promise<{ rss: number; peak: number }> {
    const reply = await this.ask({ type: 'peak' });
    if (reply.type !== 'peak') throw new Error('relay child: no peak');
    return reply;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.send({ type: 'stop' } satisfies ChildRequest);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  private async ask(request: ChildRequest): Promise<ChildReply> {
    const reply = once(this.child, 'message') as Promise<[ChildReply]>;
    this.child.send(request);
    return (await reply)[0];
  }
}
