import {promises as fsp} from 'node:fs';
import path from 'node:path';

/** The points of a deploy where the fault-injection tests stop the process to kill it. */
export type PausePoint =
  'after-mkdir' | 'mid-write' | 'after-write' | 'after-ready' | 'after-rename';

/**
 * A named point in a deploy at which a test can hold the process (REPODEPLOY_PAUSE_AT=<point>):
 * the process writes `<root>/.paused-<point>` and waits until that file is removed, so the test
 * can SIGKILL it there, or change the world (fill the disk) and let it go on. Without that
 * variable (always, outside the test suite) this returns at once.
 */
export async function pausePoint(root: string, point: PausePoint): Promise<void> {
  if (process.env.REPODEPLOY_PAUSE_AT !== point) return;
  const marker = path.join(root, `.paused-${point}`);
  await fsp.writeFile(marker, String(process.pid));
  for (;;) {
    await new Promise(resolve => setTimeout(resolve, 20));
    try {
      await fsp.access(marker);
    } catch {
      return;
    }
  }
}
