import {execFile} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {promisify} from 'node:util';
import anyTest, {type ExecutionContext, type TestFn} from 'ava';
import YAML from 'yaml';
import {ExitCode} from '../lib/support/errors.js';
import {startFakeGithub, type FakeGithub} from './helpers/github-server.js';
import {buildNpmTemplate, type NpmTemplate} from './helpers/npm-template.js';
import {makeWorld, packageRoot, pinVendor, runDeployBin, type World} from './helpers/world.js';

const exec = promisify(execFile);
const test = anyTest as TestFn<NpmTemplate>;
type T = ExecutionContext<NpmTemplate>;

test.before(async t => {
  t.context = await buildNpmTemplate();
});

test.after.always(async t => {
  await fsp.rm(t.context.dir, {recursive: true, force: true});
});

type CheckWorld = World & {github: FakeGithub; appUrl: string; sha: string; vendorSha: string};

/** The npm sample app and its vendor repo, served as acme/app.git and acme/vendor.git. */
async function checkWorld(
  t: T,
  mutate?: (w: {appDir: string; vendorDir: string}) => Promise<void>,
  serverOptions: Parameters<typeof makeWorld>[1] = {},
): Promise<CheckWorld> {
  const world = await makeWorld(t, serverOptions);
  const github = await startFakeGithub({
    token: 'gh-check-token',
    tokens: {
      // A workflow run for a pull request from a fork: a read-only GITHUB_TOKEN.
      'gh-fork-token': {access: 'read'},
      // A token for another repository only: GitHub hides acme/app from it (404).
      'gh-elsewhere-token': {access: 'write', repos: ['acme/elsewhere']},
    },
  });
  t.teardown(() => github.close());
  await fsp.cp(t.context.vendorDir, world.vendor.dir, {recursive: true});
  await fsp.cp(t.context.appDir, world.app.dir, {recursive: true});
  await mutate?.({appDir: world.app.dir, vendorDir: world.vendor.dir});
  const vendorSha = await world.vendor.commit('vendor');
  await world.app.write({
    'deploy.json': JSON.stringify({
      vendor: {url: '../vendor.git', rev: vendorSha},
      install: {type: 'npm', registries: [t.context.registryUrl]},
    }),
  });
  const sha = await world.app.commit('app');
  await world.app.publish(path.join(world.servedDir, 'acme', 'app.git'));
  await world.vendor.publish(path.join(world.servedDir, 'acme', 'vendor.git'));
  return {...world, github, appUrl: world.server.repoUrl('acme/app.git'), sha, vendorSha};
}

type Report = {
  deployable: boolean;
  couldNotCheck: boolean;
  sha: string;
  checks: Array<{id: string; status: string; message: string; fix: string | null}>;
};

async function runCheck(world: CheckWorld, extra: string[] = [], rev = world.sha) {
  const run = await runDeployBin(
    ['check', '--rev', rev, '--repo', world.appUrl, '--json', ...extra],
    {},
    world.dir,
  );
  return {...run, report: JSON.parse(run.stdout) as Report};
}

function statuses(report: Report): Record<string, string> {
  return Object.fromEntries(report.checks.map(c => [c.id, c.status]));
}

test('a good changeset passes, with the install proven offline', async t => {
  const world = await checkWorld(t);
  const {code, report, stderr} = await runCheck(world, [], world.sha.slice(0, 10));
  t.is(code, 0, stderr);
  t.true(report.deployable);
  t.is(report.sha, world.sha, 'the full sha is reported');
  t.deepEqual(statuses(report), {
    rev: 'pass',
    'deploy-json': 'pass',
    'vendor-pin': 'pass',
    lockfile: 'pass',
    artifacts: 'pass',
    shared: 'skip',
    install: 'pass',
  });
  t.regex(report.checks.find(c => c.id === 'artifacts')?.message ?? '', /^\d+ artifacts verified$/);

  const human = await runDeployBin(
    ['check', '--rev', world.sha, '--repo', world.appUrl, '--no-install'],
    {},
    world.dir,
  );
  t.is(human.code, 0);
  t.regex(human.stdout, /ok {3}the rev resolves to a commit/);
  t.regex(human.stdout, /skip the offline install works\n\s+skipped \(--no-install\)/);
  t.regex(human.stdout, /^deployable \(/m);
});

test('a failed install keeps its log where the check ran, and the report names that file', async t => {
  const world = await makeWorld(t);
  await world.vendor.write({'npm/x.tgz': 'x'});
  // The installer's output goes to the log; the check's scratch directory is gone when it ends.
  const script = 'echo resolving wheels; echo "ERROR: broken-1.0.whl is not a wheel" >&2; exit 3';
  const {appSha} = await pinVendor(world, {
    sample: true,
    config: {install: {command: ['sh', '-c', script]}},
  });
  const cwd = path.join(world.dir, 'ci-workspace');
  await fsp.mkdir(cwd);
  const run = await runDeployBin(
    ['check', '--rev', appSha, '--repo', world.appUrl, '--json'],
    {},
    cwd,
  );
  t.is(run.code, ExitCode.notDeployable, run.stderr);
  const report = JSON.parse(run.stdout) as Report;
  const install = report.checks.find(c => c.id === 'install');
  t.is(install?.status, 'fail');
  const kept = path.join(cwd, 'repodeploy-check-install.log');
  t.true(install?.message.includes(`The full output is in ${kept}.`), install?.message);
  t.regex(install?.message ?? '', /Last lines of the log:[\s\S]*broken-1\.0\.whl is not a wheel/);
  const log = await fsp.readFile(kept, 'utf8');
  t.regex(log, /resolving wheels/);
  t.regex(log, /broken-1\.0\.whl is not a wheel/);
  t.notRegex(
    install?.message ?? '',
    /output is in .*repodeploy-check-\w{6}\//,
    'not the scratch dir',
  );
});

test('a lockfile bump without a vendor bump fails, listing what is missing and the vendor-sync command', async t => {
  const world = await checkWorld(t, async ({vendorDir}) => {
    const manifestPath = path.join(vendorDir, 'vendor-manifest.json');
    const manifest = JSON.parse(await fsp.readFile(manifestPath, 'utf8')) as {
      artifacts: Array<{name: string}>;
    };
    manifest.artifacts = manifest.artifacts.filter(a => a.name !== '@demo/left-util');
    await fsp.writeFile(manifestPath, JSON.stringify(manifest, null, 2));
  });
  const {code, report} = await runCheck(world);
  t.is(code, ExitCode.notDeployable);
  t.false(report.deployable);
  const artifacts = report.checks.find(c => c.id === 'artifacts');
  t.is(artifacts?.status, 'fail');
  t.regex(
    artifacts?.message ?? '',
    /@demo\/left-util@1\.0\.0 \(node_modules\/@demo\/left-util\): not in the vendor repo/,
  );
  t.is(
    artifacts?.fix,
    `vendor-sync --app ${world.appUrl} --rev ${world.sha} --vendor ${world.server.repoUrl('acme/vendor.git')} --push, then pin the new vendor commit in the app (--update-pin with the app work tree)`,
  );
  t.false(
    report.checks.some(c => c.id === 'install'),
    'no install attempted on a changeset already refused',
  );
});

test('a tampered vendor artifact fails the check', async t => {
  const world = await checkWorld(t, async ({vendorDir}) => {
    const tarball = path.join(vendorDir, 'npm/greet-lib/greet-lib-1.0.0.tgz');
    const bytes = await fsp.readFile(tarball);
    bytes[20] = (bytes[20] ?? 0) ^ 0xff;
    await fsp.writeFile(tarball, bytes);
  });
  const {code, report} = await runCheck(world);
  t.is(code, ExitCode.notDeployable);
  t.regex(
    report.checks.find(c => c.id === 'artifacts')?.message ?? '',
    /greet-lib@1\.0\.0.*do not match the pinned hash/,
  );
});

test('an unreachable vendor commit is "could not check", with its own exit code', async t => {
  const world = await checkWorld(t);
  await fsp.rm(path.join(world.servedDir, 'acme', 'vendor.git'), {recursive: true});
  const {code, report} = await runCheck(world);
  t.is(code, ExitCode.couldNotCheck);
  t.true(report.couldNotCheck);
  t.is(statuses(report)['vendor-pin'], 'error');
  t.regex(report.checks.find(c => c.id === 'vendor-pin')?.message ?? '', /could not be fetched/);

  const unknown = await runCheck(world, [], 'no-such-branch');
  t.is(unknown.code, ExitCode.couldNotCheck);
  t.is(statuses(unknown.report).rev, 'error');

  const usage = await runDeployBin(['check', '--repo', world.appUrl], {}, world.dir);
  t.is(usage.code, ExitCode.usage);
});

test('JUnit output parses, one test case per check, failures marked', async t => {
  const world = await checkWorld(t, async ({vendorDir}) => {
    await fsp.rm(path.join(vendorDir, 'npm/greet-lib'), {recursive: true});
  });
  const junit = path.join(world.dir, 'reports', 'check.xml');
  const {code} = await runCheck(world, ['--junit', junit]);
  t.is(code, ExitCode.notDeployable);
  // Parsed by a real XML parser (Python's ElementTree), not by a regular expression.
  const script = [
    'import json, sys, xml.etree.ElementTree as E',
    'root = E.parse(sys.argv[1]).getroot()',
    'suite = root.find("testsuite")',
    'cases = [{"name": c.get("name"), "failure": c.find("failure") is not None, "skipped": c.find("skipped") is not None} for c in suite.findall("testcase")]',
    'print(json.dumps({"tests": suite.get("tests"), "failures": suite.get("failures"), "cases": cases}))',
  ].join('\n');
  const {stdout} = await exec('python3', ['-c', script, junit]);
  const parsed = JSON.parse(stdout) as {
    tests: string;
    failures: string;
    cases: Array<{name: string; failure: boolean}>;
  };
  t.is(parsed.failures, '1');
  t.is(Number(parsed.tests), parsed.cases.length);
  t.true(parsed.cases.some(c => c.name.startsWith('artifacts:') && c.failure));
  t.true(parsed.cases.some(c => c.name.startsWith('rev:') && !c.failure));
});

test('the GitHub Actions workflow in examples/ci runs as written and posts commit statuses', async t => {
  // The app and vendor repositories are private: only the DEPLOY_GIT_TOKEN secret reads them,
  // as GITHUB_TOKEN cannot read a repository other than the workflow's own.
  const world = await checkWorld(t, undefined, {
    auth: {username: 'x-access-token', password: 'deploy-read-token'},
  });
  const workflow = YAML.parse(
    await fsp.readFile(path.join(packageRoot, 'examples/ci/deploy-check.yml'), 'utf8'),
  ) as {
    jobs: Record<
      string,
      {steps: Array<{name?: string; run?: string; env?: Record<string, string>}>}
    >;
  };
  const step = workflow.jobs['deploy-check']?.steps.find(s => s.name === 'deploy check');
  t.truthy(step?.run);
  // The expressions GitHub Actions would fill in, pointed at the local servers.
  const values: Record<string, string> = {
    'github.event.pull_request.head.sha || github.sha': world.sha,
    'github.server_url': world.server.url,
    'github.repository': 'acme/app',
    'secrets.GITHUB_TOKEN': 'gh-check-token',
    'secrets.DEPLOY_GIT_TOKEN': 'deploy-read-token',
  };
  const expand = (text: string) =>
    text.replace(/\$\{\{\s*(.+?)\s*\}\}/g, (_m, expr: string) => {
      const value = values[expr];
      if (value === undefined) throw new Error(`no test value for \${{ ${expr} }}`);
      return value;
    });
  const binDir = path.join(world.dir, 'bin');
  await fsp.mkdir(binDir);
  await fsp.symlink(path.join(packageRoot, 'bin', 'deploy.js'), path.join(binDir, 'deploy'));
  const env = {
    PATH: `${binDir}:${process.env.PATH ?? ''}`,
    GITHUB_REPOSITORY: 'acme/app',
    GITHUB_API_URL: world.github.apiUrl,
    GITHUB_SERVER_URL: 'https://github.example',
    GITHUB_RUN_ID: '42',
    ...Object.fromEntries(Object.entries(step?.env ?? {}).map(([k, v]) => [k, expand(v)])),
  };
  const workdir = path.join(world.dir, 'ci');
  await fsp.mkdir(workdir);
  const run = () =>
    exec('sh', ['-c', expand(step?.run ?? '')], {cwd: workdir, env}).then(
      r => ({code: 0, ...r}),
      (error: unknown) => error as {code: number; stdout: string; stderr: string},
    );
  const ok = await run();
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /^deployable/m);
  await fsp.access(path.join(workdir, 'reports', 'deploy-check.xml'));
  t.like(world.github.statuses.get('acme/app')?.[0], {
    sha: world.sha,
    state: 'success',
    context: 'repodeploy/check',
    target_url: 'https://github.example/acme/app/actions/runs/42',
  });
  for (const secret of ['gh-check-token', 'deploy-read-token'])
    t.false(ok.stdout.includes(secret) || ok.stderr.includes(secret), `${secret} was printed`);

  // The same workflow on a changeset whose vendor repo lacks an artifact: a failure status.
  await fsp.rm(path.join(world.vendor.dir, 'npm', 'greet-lib'), {recursive: true});
  const badVendor = await world.vendor.commit('drop greet-lib');
  await world.vendor.publish(path.join(world.servedDir, 'acme', 'vendor.git'));
  const config = JSON.parse(
    await fsp.readFile(path.join(world.app.dir, 'deploy.json'), 'utf8'),
  ) as {vendor: {rev: string}};
  config.vendor.rev = badVendor;
  await world.app.write({'deploy.json': JSON.stringify(config)});
  values['github.event.pull_request.head.sha || github.sha'] = await world.app.commit(
    'pin a vendor commit without greet-lib',
  );
  await world.app.publish(path.join(world.servedDir, 'acme', 'app.git'));
  const bad = await run();
  t.is(bad.code, ExitCode.notDeployable);
  const posted = world.github.statuses.get('acme/app') ?? [];
  t.is(posted.length, 2);
  t.like(posted[1], {state: 'failure', context: 'repodeploy/check'});
  t.regex(posted[1]?.description ?? '', /^NOT deployable: artifacts: /);
  t.true((posted[1]?.description.length ?? 0) <= 140);
});

/** `deploy check --github-status` as CI runs it, with `token`; human output and then --json. */
async function checkWithStatus(world: CheckWorld, token: string) {
  const env = {
    GITHUB_TOKEN: token,
    GITHUB_REPOSITORY: 'acme/app',
    GITHUB_API_URL: world.github.apiUrl,
  };
  const args = ['check', '--rev', world.sha, '--repo', world.appUrl, '--no-install'];
  const human = await runDeployBin([...args, '--github-status'], env, world.dir);
  const json = await runDeployBin([...args, '--github-status', '--json'], env, world.dir);
  const report = JSON.parse(json.stdout) as Report & {
    githubStatus: string | null;
    githubStatusWarning?: string;
  };
  return {human, json, report};
}

test('a status GitHub refuses (403, the read-only token of a fork pull request): the report, the verdict, a warning, exit 0 when deployable', async t => {
  const world = await checkWorld(t);
  const {human, json, report} = await checkWithStatus(world, 'gh-fork-token');
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /ok {3}the rev resolves to a commit/);
  t.regex(human.stdout, /^deployable \(/m);
  t.regex(
    human.stderr,
    /^warning: the commit status repodeploy\/check \(success\) could not be set on acme\/app@[0-9a-f]{12}: GitHub answered HTTP 403: Resource not accessible by integration\. .*read-only GITHUB_TOKEN/m,
  );
  t.false(human.stderr.includes('error:'), human.stderr);
  t.is(json.code, 0, json.stderr);
  t.true(report.deployable);
  t.is(report.githubStatus, null);
  t.regex(report.githubStatusWarning ?? '', /HTTP 403: Resource not accessible by integration/);
  const posts = world.github.requests.filter(r => r.method === 'POST');
  t.is(posts.length, 2, 'one attempt a run: a refusal is not retried');
  t.true(posts.every(r => r.path === `/repos/acme/app/statuses/${world.sha}`));
  t.is(world.github.statuses.get('acme/app'), undefined);
  for (const text of [human.stdout, human.stderr, json.stdout, json.stderr])
    t.false(text.includes('gh-fork-token'));
});

test('a status GitHub refuses (404, the token cannot see the repository) on a changeset that is not deployable: exit 11, the report and a warning', async t => {
  const world = await checkWorld(t, async ({vendorDir}) => {
    await fsp.rm(path.join(vendorDir, 'npm/greet-lib'), {recursive: true});
  });
  const {human, json, report} = await checkWithStatus(world, 'gh-elsewhere-token');
  t.is(human.code, ExitCode.notDeployable, human.stderr);
  t.regex(human.stdout, /FAIL every artifact/);
  t.regex(human.stdout, /^NOT deployable \(/m);
  t.regex(
    human.stderr,
    /^warning: the commit status repodeploy\/check \(failure\) could not be set on acme\/app@[0-9a-f]{12}: GitHub answered HTTP 404: Not Found\. .*cannot see the repository/m,
  );
  t.is(json.code, ExitCode.notDeployable);
  t.false(report.deployable);
  t.is(statuses(report).artifacts, 'fail');
  t.is(report.githubStatus, null);
  t.regex(report.githubStatusWarning ?? '', /HTTP 404/);
  t.is(world.github.statuses.get('acme/app'), undefined);
});
