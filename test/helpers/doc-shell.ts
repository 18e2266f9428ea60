import {execFile} from 'node:child_process';
import {promisify} from 'node:util';

const exec = promisify(execFile);

/** A block preceded by a line with this text is for the reader only. */
export const SKIP_MARK = 'not run by the test';

/** A markdown doc's ```sh blocks, in order, without those marked as not run by the test. */
export function shellBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  const fence = /^```sh\n([^]*?)^```$/gm;
  for (let match = fence.exec(markdown); match; match = fence.exec(markdown)) {
    const before = markdown.slice(0, match.index).trimEnd().split('\n').pop() ?? '';
    if (!before.includes(SKIP_MARK)) blocks.push(match[1] ?? '');
  }
  return blocks;
}

export type ShellRun = {stdout: string; stderr: string; error?: string};

/**
 * Run shell blocks as one bash script that stops at the first failing command. Jobs the blocks
 * left in the background are killed when the script ends, failed or not, so a server a doc
 * starts does not outlive the test.
 */
export async function runShellBlocks(
  blocks: string[],
  options: {cwd: string; env: NodeJS.ProcessEnv},
): Promise<ShellRun> {
  const script = `set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${blocks.join('\n')}`;
  return exec('bash', ['-c', script], {
    cwd: options.cwd,
    env: options.env,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 10 * 60 * 1000,
  }).catch((error: unknown) => {
    const e = error as {stdout?: string; stderr?: string; code?: number; signal?: string};
    const error_ = `the commands stopped (exit ${String(e.code ?? e.signal)})`;
    return {stdout: e.stdout ?? '', stderr: e.stderr ?? '', error: error_};
  });
}
