/**
 * A small Dockerfile reader for tests (no Docker engine here): instructions with their line numbers, line
 * continuations, comments and parser directives, exec (JSON) and shell forms, flags (`--from=`, `--interval=`),
 * and build stages. It throws on what BuildKit would refuse: an unknown instruction, an unterminated
 * continuation, a malformed JSON array, an instruction before the first FROM (other than ARG).
 */

export const INSTRUCTIONS = ['ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'] as const;
export type InstructionName = (typeof INSTRUCTIONS)[number];

export interface Instruction {
  name: InstructionName;
  line: number;
  /** `--name=value` flags at the start of the arguments. */
  flags: Record<string, string>;
  /** The arguments after the flags, continuation lines joined with a space. */
  args: string;
  /** The JSON array of the exec form, or null for the shell form. */
  exec: string[] | null;
}

export interface Stage {
  index: number;
  /** The `AS name`, or null. */
  name: string | null;
  base: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM. */
  globalArgs: Instruction[];
  stages: Stage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const logical = joinContinuations(text);
  const result: Dockerfile = { globalArgs: [], stages: [] };
  for (const { line, content } of logical) {
    const m = /^(\S+)\s*([\s\S]*)$/.exec(content);
    if (!m) continue;
    const name = m[1]!.toUpperCase();
    if (!(INSTRUCTIONS as readonly string[]).includes(name)) throw new Error(`line ${line}: unknown instruction ${m[1]}`);
    const instruction = readInstruction(name as InstructionName, m[2]!.trim(), line);
    if (instruction.name === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+([a-z][a-z0-9_.-]*))?$/i.exec(instruction.args);
      if (!from) throw new Error(`line ${line}: FROM image [AS name]`);
      result.stages.push({ index: result.stages.length, name: from[2]?.toLowerCase() ?? null, base: from[1]!, instructions: [instruction] });
    } else if (result.stages.length === 0) {
      if (instruction.name !== 'ARG') throw new Error(`line ${line}: ${instruction.name} before the first FROM`);
      result.globalArgs.push(instruction);
    } else {
      result.stages.at(-1)!.instructions.push(instruction);
    }
  }
  if (result.stages.length === 0) throw new Error('no FROM');
  return result;
}

/** Logical lines: comments and blank lines dropped, `\`-continued lines joined (comments inside them too). */
function joinContinuations(text: string): Array<{ line: number; content: string }> {
  const out: Array<{ line: number; content: string }> = [];
  let current: { line: number; content: string } | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && current === null)) return; // directives are comments to us
    if (trimmed === '' && current) return; // an empty line inside a continuation is skipped, as BuildKit does
    const continued = /\\$/.test(trimmed);
    const piece = continued ? trimmed.slice(0, -1).trimEnd() : trimmed;
    if (current) current.content += ` ${piece}`;
    else current = { line: i + 1, content: piece };
    if (!continued) {
      out.push(current);
      current = null;
    }
  });
  if (current) throw new Error(`line ${(current as { line: number }).line}: continuation never ends`);
  return out;
}

function readInstruction(name: InstructionName, rest: string, line: number): Instruction {
  const flags: Record<string, string> = {};
  let args = rest;
  for (let m = /^--([a-z-]+)=(\S+)\s*/.exec(args); m; m = /^--([a-z-]+)=(\S+)\s*/.exec(args)) {
    flags[m[1]!] = m[2]!;
    args = args.slice(m[0].length);
  }
  let exec: string[] | null = null;
  const execBody = name === 'HEALTHCHECK' ? /^CMD\s+(\[.*\])$/s.exec(args)?.[1] : args;
  if (execBody?.startsWith('[') && ['CMD', 'ENTRYPOINT', 'RUN', 'SHELL', 'VOLUME', 'HEALTHCHECK', 'COPY', 'ADD'].includes(name)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(execBody);
    } catch {
      throw new Error(`line ${line}: ${name} looks like a JSON array but is not one`);
    }
    if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) throw new Error(`line ${line}: ${name} JSON must be an array of strings`);
    exec = parsed;
  }
  if (args === '' && name !== 'HEALTHCHECK') throw new Error(`line ${line}: ${name} without arguments`);
  return { name, line, flags, args, exec };
}

/** Instructions named `name` in a stage. */
export function instructionsOf(stage: Stage, name: InstructionName): Instruction[] {
  return stage.instructions.filter((i) => i.name === name);
}

/** `KEY=value` pairs of ENV instructions (both `ENV K=V K2="v 2"` and the legacy `ENV K V`). */
export function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructionsOf(stage, 'ENV')) {
    if (!i.args.includes('=')) {
      const [key, ...value] = i.args.split(/\s+/);
      env[key!] = value.join(' ');
      continue;
    }
    for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) env[m[1]!] = m[2]!.replace(/^"(.*)"$/s, '$1');
  }
  return env;
}
