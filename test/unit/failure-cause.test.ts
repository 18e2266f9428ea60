import test from 'ava';
import {failureCause} from '../../lib/node/status.js';

test('a failure listing problems is shown by its first problem, and how many more', t => {
  t.is(
    failureCause(
      '1 npm artifact problem; nothing was installed:\n  - ms@2.1.2: not in the vendor repo',
    ),
    'ms@2.1.2: not in the vendor repo',
  );
  t.is(
    failureCause(
      '3 npm artifact problems; nothing was installed:\n  - a@1: x\n  - b@1: y\n  - c@1: z',
    ),
    'a@1: x (and 2 more)',
  );
});

test("an installer's failure is its first line and its log's first error line", t => {
  t.is(
    failureCause(
      'install command "npm ci" failed (exit code 1).\nLast lines of the log:\n  | > npm ci\n  | npm error code EUSAGE\n  | npm error later',
    ),
    'install command "npm ci" failed (exit code 1). npm error code EUSAGE',
  );
  t.is(failureCause('health check failed: HTTP 500\nmore'), 'health check failed: HTTP 500');
});
