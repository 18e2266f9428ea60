import {promises as fsp} from 'node:fs';
import path from 'node:path';

/**
 * A virtualenv is not relocatable: the scripts in its bin/ start with a shebang naming its
 * interpreter by absolute path (`#!<venv>/bin/python3`, or pip's `#!/bin/sh` + `'''exec' <venv>/...`
 * form for long paths), bin/activate* set VIRTUAL_ENV to its path, and pyvenv.cfg records the
 * command that made it. Everything else (site-packages, the interpreter links) does not depend on
 * where it lives: Python finds its prefix from the location of bin/python and pyvenv.cfg beside
 * it, and a .pyc's recorded source path is replaced by the real one when it is loaded.
 *
 * A copy from the previous release is made right by rewriting exactly those lines, only where
 * they name the previous venv's path; a text file of bin/ naming it anywhere else, or a binary
 * naming it, means the copy is not used (the caller installs afresh).
 */

/** The longest shebang line pip writes as such (distlib falls back to `/bin/sh` past it). */
const SHEBANG_MAX = 127;

/**
 * Rewrite the copied virtualenv `to` (copied from `from`) so that nothing in bin/ or pyvenv.cfg
 * names `from`; undefined when done, else why the copy cannot be used.
 */
export async function relocateVenv(from: string, to: string): Promise<string | undefined> {
  const bin = path.join(to, 'bin');
  const names = (await fsp.readdir(bin).catch(() => [])).sort();
  for (const name of names) {
    const file = path.join(bin, name);
    const stat = await fsp.lstat(file);
    if (!stat.isFile()) continue;
    const bytes = await fsp.readFile(file);
    if (!bytes.includes(from)) continue;
    if (bytes.includes(0))
      return `bin/${name} of the previous virtualenv is a binary naming its path`;
    const text = rewriteScript(name, bytes.toString('utf8'), from, to);
    if (text === undefined || text.includes(from)) {
      return `bin/${name} of the previous virtualenv names its path where it cannot be rewritten`;
    }
    await fsp.writeFile(file, text);
  }
  const cfgFile = path.join(to, 'pyvenv.cfg');
  const cfg = await fsp.readFile(cfgFile, 'utf8').catch(() => undefined);
  if (cfg === undefined) return 'the previous virtualenv has no pyvenv.cfg';
  if (cfg.includes(from)) {
    const rewritten = cfg
      .split('\n')
      .map(line =>
        line.startsWith('command = ') && line.endsWith(` ${from}`)
          ? `${line.slice(0, -from.length)}${to}`
          : line,
      )
      .join('\n');
    if (rewritten.includes(from)) return 'pyvenv.cfg of the previous virtualenv names its path';
    await fsp.writeFile(cfgFile, rewritten);
  }
  return undefined;
}

/**
 * One script of bin/ with its interpreter line(s) and, in activate*, its VIRTUAL_ENV lines
 * pointed at `to`; undefined when a new shebang would be too long to work.
 */
function rewriteScript(name: string, text: string, from: string, to: string): string | undefined {
  const lines = text.split('\n');
  const first = lines[0] ?? '';
  if (first.startsWith(`#!${from}/bin/`)) {
    const shebang = `#!${to}${first.slice(2 + from.length)}`;
    if (shebang.length > SHEBANG_MAX) return undefined;
    lines[0] = shebang;
  } else if (first === '#!/bin/sh' && (lines[1] ?? '').startsWith("'''exec' ")) {
    lines[1] = (lines[1] ?? '').replaceAll(`${from}/bin/`, `${to}/bin/`);
  }
  if (name.startsWith('activate')) {
    // The path as a whole word: quoted (`"<venv>"`) or, as shlex.quote leaves a plain path, bare.
    const whole = new RegExp(`(?<=^|["'=\\s(])${escapeRegExp(from)}(?=$|["'\\s);])`, 'g');
    for (const [i, line] of lines.entries()) {
      if (/\bVIRTUAL_ENV\b/.test(line)) lines[i] = line.replace(whole, () => to);
    }
  }
  return lines.join('\n');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
