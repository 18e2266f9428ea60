import {Parser} from 'htmlparser2';
import {z} from 'zod';
import {SourceError} from '../../lib/support/errors.js';
import {redact} from '../../lib/support/redact.js';

/** One file link of a project page, as the index states it (PEP 503 HTML or PEP 691 JSON). */
export type PageLink = {
  filename: string;
  /** Absolute, with any hash fragment kept (PEP 503 puts the hash there). */
  href: string;
  /** Hashes by algorithm, lower-case hex: from JSON `hashes`, or `#<algo>=<hex>` of the URL. */
  hashes: Record<string, string>;
  requiresPython: string | undefined;
  /** PEP 592: `true` or the reason given; `false` when the file is not yanked. */
  yanked: boolean | string;
};

/** The PEP 691 media type of the JSON form, major version 1 (the only one there is). */
export const PEP691_JSON = 'application/vnd.pypi.simple.v1+json';

/**
 * What pip asks for: the JSON form first, then the HTML forms. An index that knows only PEP 503
 * answers HTML whatever is asked, so the HTML parser stays the fallback.
 */
export const SIMPLE_ACCEPT = `${PEP691_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01`;

/** The links of a project page, read in the form the server says it answered in. */
export function parseProjectPage(body: string, contentType: string, pageUrl: string): PageLink[] {
  const media = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (media === PEP691_JSON) return parseJsonPage(body, pageUrl);
  if (/^application\/vnd\.pypi\.simple\.v\d+\+json$/.test(media) || media.endsWith('+json')) {
    throw new SourceError(
      `${redact(pageUrl)} answered ${media}, a form of the simple API this version does not read.`,
      `Point --pypi-index at an index that serves ${PEP691_JSON} or HTML.`,
    );
  }
  return parseHtmlPage(body, pageUrl);
}

const jsonPage = z.object({
  meta: z.object({'api-version': z.string().regex(/^1\.\d+$/)}),
  files: z.array(
    z.object({
      filename: z.string(),
      url: z.string(),
      hashes: z.record(z.string(), z.string()),
      'requires-python': z.string().nullish(),
      yanked: z.union([z.boolean(), z.string()]).nullish(),
    }),
  ),
});

function parseJsonPage(body: string, pageUrl: string): PageLink[] {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (error) {
    throw invalidPage(pageUrl, 'its JSON does not parse', error);
  }
  const parsed = jsonPage.safeParse(data);
  if (!parsed.success)
    throw invalidPage(pageUrl, z.prettifyError(parsed.error).replace(/\n\s*/g, ' '));
  return parsed.data.files.map(file => ({
    filename: file.filename,
    href: new URL(file.url, pageUrl).href,
    hashes: lowerHex(file.hashes),
    requiresPython: file['requires-python'] ?? undefined,
    // PEP 691: a string is a reason and means yanked, even an empty one.
    yanked: typeof file.yanked === 'string' ? file.yanked : file.yanked === true,
  }));
}

/**
 * The `<a>` elements of a PEP 503 page, through a real HTML parser: quoting, entities
 * (`&#x26;`, `&gt;=3.8`) and attribute order are whatever the index's template made of them.
 */
function parseHtmlPage(body: string, pageUrl: string): PageLink[] {
  const links: PageLink[] = [];
  let open: {attribs: Record<string, string>; text: string} | undefined;
  const parser = new Parser(
    {
      onopentag(name, attribs) {
        if (name === 'a') open = {attribs, text: ''};
      },
      ontext(text) {
        if (open) open.text += text;
      },
      onclosetag(name) {
        if (name !== 'a' || !open) return;
        const link = htmlLink(open.attribs, open.text.trim(), pageUrl);
        if (link) links.push(link);
        open = undefined;
      },
    },
    {decodeEntities: true, lowerCaseAttributeNames: true},
  );
  parser.end(body);
  return links;
}

function htmlLink(
  attribs: Record<string, string>,
  filename: string,
  pageUrl: string,
): PageLink | undefined {
  const href = attribs.href;
  if (href === undefined || filename === '') return undefined;
  let url: URL;
  try {
    url = new URL(href, pageUrl);
  } catch {
    return undefined;
  }
  // PEP 503: the fragment is `#<hashname>=<hashvalue>`.
  const fragment = /^([a-z0-9]+)=([0-9a-f]+)$/i.exec(url.hash.slice(1));
  const yanked = attribs['data-yanked'];
  return {
    filename,
    href: url.href,
    hashes: fragment ? lowerHex({[fragment[1] ?? '']: fragment[2] ?? ''}) : {},
    requiresPython: attribs['data-requires-python'] || undefined,
    // The attribute's presence marks the file yanked; its value, when there is one, is the reason.
    yanked: yanked === undefined ? false : yanked === '' ? true : yanked,
  };
}

function lowerHex(hashes: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(hashes).map(([algo, hex]) => [algo.toLowerCase(), hex.toLowerCase()]),
  );
}

function invalidPage(pageUrl: string, why: string, cause?: unknown): SourceError {
  return new SourceError(
    `${redact(pageUrl)} is not a valid PEP 691 project page: ${why}.`,
    'Check --pypi-index: it must be a PEP 503 / PEP 691 simple index.',
    {cause},
  );
}
