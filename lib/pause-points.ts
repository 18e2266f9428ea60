import {promises as fsp} from 'node:fs';
import path from 'node:path';

/** The points of a deploy where the fault-injection tests stop the process to kill it. */
export type PausePoint = 'after-mkdir' | 'after-write' | 'after-ready' | 'after-rename';

/**
 * A named point in a deploy at which a test can freeze the process in order to SIGKILL it there
 * (REPODEPLOY_PAUSE_AT=<point>): the process writes `<root>/.paused-<point>` and waits to be
 * killed. Without that variable (always, outside the test suite) this returns at once.
 */
export async function pausePoint(root: string, point: PausePoint): Promise<void> {
  if (process.env.REPODEPLOY_PAUSE_AT !== point) return;
  await fsp.writeFile(path.join(root, `.paused-${point}`), String(process.pid));
  await new Promise(() => undefined);
}
