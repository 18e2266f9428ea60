import type {Argv, MiddlewareFunction} from 'yargs';

/** What yargs passes a middleware at run time: argv, and the parser (for the options known). */
type Parser = {getOptions(): {key: Record<string, unknown>}};

/**
 * Options from the environment, as Ansible and npm take theirs: `--vendor-repo` from
 * DEPLOY_VENDOR_REPO, `--app` from VENDOR_SYNC_APP. A flag on the command line wins.
 *
 * yargs `.env(prefix)` turns every PREFIX_* variable into an argument, including the ones that
 * are no option (DEPLOY_GIT_TOKEN, VENDOR_SYNC_NPM_TOKEN ...) or an option of another command
 * (DEPLOY_REV for `deploy status`); strict mode would refuse those as unknown arguments, and a
 * token would sit in argv. Before validation, such arguments are dropped again.
 */
export function withEnv<T>(y: Argv<T>, prefix: string, args: readonly string[]): Argv<T> {
  const drop = (argv: Record<string, unknown>, parser: Parser) => {
    const known = new Set(Object.keys(parser.getOptions().key));
    for (const [name, value] of Object.entries(process.env)) {
      if (!name.startsWith(`${prefix}_`) || value === undefined) continue;
      const kebab = name
        .slice(prefix.length + 1)
        .toLowerCase()
        .replace(/_/g, '-');
      const camel = kebab.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      if (known.has(kebab) || known.has(camel) || onCommandLine(args, kebab, camel)) continue;
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- the keys yargs made
      delete argv[kebab];
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- the keys yargs made
      delete argv[camel];
    }
  };
  // The types declare one parameter; yargs passes the parser as a second (build/lib/middleware.js).
  return y.env(prefix).middleware(drop as unknown as MiddlewareFunction<T>, true);
}

/** Whether `--name` was typed, so that an unknown flag is still refused as one. */
function onCommandLine(args: readonly string[], ...names: string[]): boolean {
  return args.some(arg => names.some(n => arg === `--${n}` || arg.startsWith(`--${n}=`)));
}
