/**
 * One line typed at the terminal without echo, after a visible prompt on standard error (standard output may be
 * a file the hash goes to). The terminal is put in raw mode and read key by key: readline's own prompt handling
 * redraws the line, which erased the prompt and left people typing blind. Backspace edits, Enter ends,
 * Ctrl-C and Ctrl-D (on an empty line) give up; arrow and function keys are ignored.
 */
const ENTER = new Set(['\r', '\n']);
const BACKSPACE = new Set(['\u007f', '\b']);
const CTRL_C = '\u0003';
const CTRL_D = '\u0004';

/** Resolves the line, or null when the person gave up (Ctrl-C, Ctrl-D, end of input). */
export function readHiddenLine(prompt: string): Promise<string | null> {
  const input = process.stdin;
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.resume();
  return new Promise((resolve) => {
    let typed = '';
    const finish = (value: string | null) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      resolve(value);
    };
    const onEnd = () => finish(null);
    const onData = (chunk: string) => {
      if (chunk.startsWith('\u001b')) return; // an arrow or function key: not part of a password
      for (const ch of chunk) {
        if (ENTER.has(ch)) return finish(typed);
        if (ch === CTRL_C || (ch === CTRL_D && typed === '')) return finish(null);
        if (BACKSPACE.has(ch)) typed = [...typed].slice(0, -1).join('');
        else if (ch >= ' ') typed += ch;
      }
    };
    input.on('data', onData);
    input.on('end', onEnd);
  });
}
