import yauzl from 'yauzl';
import {IntegrityError} from '../support/errors.js';

/** Caps a wheel must stay within (a zip bomb or a million entries stops here). */
export const WHEEL_LIMITS = {
  maxEntries: 100_000,
  maxUncompressedBytes: 2 * 1024 ** 3,
  maxRecordBytes: 16 * 1024 ** 2,
};

/**
 * Check a wheel before pip sees it: every entry name and every path in its RECORD must stay inside
 * the install (no absolute path, no `..`, no backslash, no drive letter), and its declared sizes
 * must stay within the caps. pip's own check once let `../site-packages-x/...` through
 * (a prefix test), so this one refuses every `..` outright.
 */
export async function checkWheel(file: string, label: string): Promise<void> {
  const refuse = (why: string) =>
    new IntegrityError(
      `Refused wheel ${label}: ${why}.`,
      'Do not vendor this file; it could write outside the virtualenv.',
    );
  const zip = await openWheel(file, refuse);
  try {
    const records = await checkEntries(zip, refuse);
    for (const text of await Promise.all(records)) checkRecord(text, refuse);
  } finally {
    zip.close();
  }
}

type Refuse = (why: string) => IntegrityError;

function openWheel(file: string, refuse: Refuse): Promise<yauzl.ZipFile> {
  return new Promise<yauzl.ZipFile>((resolve, reject) => {
    yauzl.open(
      file,
      {lazyEntries: true, strictFileNames: true, validateEntrySizes: true},
      (error, opened) => {
        if (error) reject(refuse(`not a readable zip (${error.message})`));
        else resolve(opened);
      },
    );
  });
}

/**
 * Every entry of the central directory checked against the caps and for a path that leaves the
 * install; the texts of its RECORD files, still being read.
 */
async function checkEntries(zip: yauzl.ZipFile, refuse: Refuse): Promise<Promise<string>[]> {
  let entries = 0;
  let total = 0;
  const records: Promise<string>[] = [];
  await new Promise<void>((resolve, reject) => {
    zip.on('error', (error: Error) => {
      reject(refuse(error.message));
    });
    zip.on('end', () => {
      resolve();
    });
    zip.on('entry', (entry: yauzl.Entry) => {
      entries++;
      total += entry.uncompressedSize;
      // protection R20-wheel-size: the size cap of wheels
      const why =
        entries > WHEEL_LIMITS.maxEntries
          ? `more than ${WHEEL_LIMITS.maxEntries} entries`
          : total > WHEEL_LIMITS.maxUncompressedBytes
            ? `more than ${WHEEL_LIMITS.maxUncompressedBytes} bytes unpacked`
            : unsafePath(entry.fileName);
      if (why) {
        reject(refuse(entry.fileName ? `entry "${entry.fileName}": ${why}` : why));
        return;
      }
      if (/^[^/]+\.dist-info\/RECORD$/.test(entry.fileName)) {
        if (entry.uncompressedSize > WHEEL_LIMITS.maxRecordBytes) {
          reject(refuse('RECORD is too large'));
          return;
        }
        records.push(readEntry(zip, entry));
      }
      zip.readEntry();
    });
    zip.readEntry();
  });
  return records;
}

/** Every path a RECORD lists (its first CSV field) must stay inside the install too. */
function checkRecord(text: string, refuse: Refuse): void {
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const name = line.startsWith('"')
      ? (/^"((?:[^"]|"")*)"/.exec(line)?.[1] ?? '').replace(/""/g, '"')
      : (line.split(',')[0] ?? '');
    const why = unsafePath(name);
    if (why) throw refuse(`RECORD lists "${name}": ${why}`);
  }
}

function unsafePath(name: string): string | undefined {
  if (name === '') return 'empty path';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'absolute path';
  if (name.includes('\\')) return 'backslash in path';
  // protection R19-record-path: a wheel path may not leave the install directory
  if (name.split('/').includes('..')) return 'path leaves the install directory';
  return undefined;
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<string> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (error, stream) => {
      if (error) {
        reject(error);
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      stream.on('error', reject);
    });
  });
}
