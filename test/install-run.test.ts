import {promises as fsp} from 'node:fs';
import path from 'node:path';
import test from 'ava';
import {InstallError} from '../lib/support/errors.js';
import {runLogged} from '../lib/node/run-logged.js';
import {tempDir} from './helpers/tmp.js';

test('runLogged: work done alongside the command that fails stops the command and is the error; a command that fails waits for that work', async t => {
  const dir = await tempDir(t);
  const logFile = path.join(dir, 'install.log');
  const pidFile = path.join(dir, 'pid');
  const started = Date.now();
  const error = await t.throwsAsync(
    runLogged('sh', ['-c', `echo $$ > "${pidFile}"; exec sleep 60`], {
      cwd: dir,
      env: {PATH: process.env.PATH ?? ''},
      logFile,
      label: 'slow',
      alongside: async () => {
        // Wait until the command runs, then fail.
        for (
          let i = 0;
          i < 200 &&
          !(await fsp.access(pidFile).then(
            () => true,
            () => false,
          ));
          i++
        )
          await new Promise(resolve => setTimeout(resolve, 10));
        throw new Error('the write failed');
      },
    }),
  );
  t.is(error.message, 'the write failed');
  t.true(Date.now() - started < 30_000, 'the command did not run to its end');
  const pid = Number((await fsp.readFile(pidFile, 'utf8')).trim());
  t.throws(() => process.kill(pid, 0), {code: 'ESRCH'}, 'the command is gone');

  let finished = false;
  const failed = await t.throwsAsync(
    runLogged('sh', ['-c', 'exit 3'], {
      cwd: dir,
      env: {PATH: process.env.PATH ?? ''},
      logFile,
      label: 'quick',
      alongside: async () => {
        await new Promise(resolve => setTimeout(resolve, 300));
        finished = true;
      },
    }),
    {instanceOf: InstallError},
  );
  t.regex(failed.message, /quick failed \(exit code 3\)/);
  t.true(finished, 'the work alongside finished before the failure was thrown');
});
