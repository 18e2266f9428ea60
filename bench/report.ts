/**
 * The bench's results: every run's figures, their min–median–max, ratios run by run, the targets
 * met or not (on the median, and on the worst run against 1.25× the target), and
 * docs/performance.md written from them.
 */
import os from 'node:os';
import type {HashRuns} from './hashing.js';
import {ratios, spread, type Sample, type Spread} from './measure.js';
import type {InflatePoint, RssPoint} from './rss.js';
import type {SyncRuns} from './sync.js';

type Pair = {ours: Sample[]; native: Sample[]};
type Figures = {seconds: Spread; rssMb: Spread};
export type Compared = {ours: Figures; native: Figures; ratio: Spread};

export type Target = {
  scenario: string;
  target: string;
  median: number;
  worst: number;
  unit: string;
  met: boolean;
};

export type Raw = {
  quick: boolean;
  runs: number;
  rssRuns: number;
  /** Wall seconds of each phase of the bench, and `total`. */
  phases: Record<string, number>;
  benchmark: {
    appCommits: number;
    appFiles: number;
    appPackMiB: number;
    npmPackages: number;
    vendorFiles: number;
  };
  deploys: {first: Pair; incremental: Pair; lockChange: Pair};
  sync: SyncRuns;
  hashSmall: HashRuns;
  hashLarge: HashRuns;
  history: RssPoint[];
  inflate: InflatePoint;
};

const figures = (s: Sample[]): Figures => ({
  seconds: spread(s.map(x => x.seconds)),
  rssMb: spread(s.map(x => x.rssMb ?? Number.NaN)),
});

export function compare(p: Pair): Compared {
  return {
    ours: figures(p.ours),
    native: figures(p.native),
    ratio: spread(
      ratios(
        p.ours.map(x => x.seconds),
        p.native.map(x => x.seconds),
      ),
    ),
  };
}

/** Throughput of ours over sha512sum's, run by run (> 1: faster than sha512sum). */
const hashing = (h: HashRuns) => ({
  files: h.files,
  bytes: h.bytes,
  oursSeconds: spread(h.ours),
  nativeSeconds: spread(h.native),
  throughputRatio: spread(ratios(h.native, h.ours)),
});

function summaryOf(raw: Raw) {
  const scenarios = {
    first: compare(raw.deploys.first),
    incremental: compare(raw.deploys.incremental),
    lockChange: compare(raw.deploys.lockChange),
    syncCold: compare({ours: raw.sync.cold, native: raw.sync.npmCold}),
  };
  const summary = {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
      node: process.version,
      loadAverage: os.loadavg().map(n => Number(n.toFixed(2))),
    },
    quick: raw.quick,
    runs: raw.runs,
    rssRuns: raw.rssRuns,
    phases: raw.phases,
    benchmark: raw.benchmark,
    scenarios,
    syncNoop: {
      ours: figures(raw.sync.noop),
      inProcessSeconds: spread(raw.sync.noopInProcess),
    },
    hashing: {small: hashing(raw.hashSmall), large: hashing(raw.hashLarge)},
    history: raw.history.map(p => ({...p, compared: compare(p)})),
    inflate: {
      ...raw.inflate,
      tipCompared: compare(raw.inflate.tip),
      oldCompared: compare(raw.inflate.old),
    },
  };
  return summary;
}

export function summarize(raw: Raw) {
  const summary = summaryOf(raw);
  return {...summary, targets: targets(summary)};
}

export type Results = ReturnType<typeof summarize>;
type Summary = ReturnType<typeof summaryOf>;

/** At most `limit` on the median, and no run over 1.25× `limit`. */
function atMost(scenario: string, s: Spread, limit: number, unit: string, target: string): Target {
  return {
    scenario,
    target,
    median: s.median,
    worst: s.max,
    unit,
    met: s.median <= limit && s.max <= 1.25 * limit,
  };
}

function targets(r: Summary): Target[] {
  const s = r.scenarios;
  const rss: Array<[string, Spread]> = [
    ['first deploy', s.first.ours.rssMb],
    ['incremental deploy', s.incremental.ours.rssMb],
    ['lockfile change deploy', s.lockChange.ours.rssMb],
    ['vendor-sync cold', s.syncCold.ours.rssMb],
    ['vendor-sync no-op', r.syncNoop.ours.rssMb],
    ...r.history.map(
      p =>
        [`first deploy, ${p.packMiB.toFixed(0)} MiB history`, p.compared.ours.rssMb] as [
          string,
          Spread,
        ],
    ),
    [`first deploy, inflating pack, tip`, r.inflate.tipCompared.ours.rssMb],
    [
      `first deploy, inflating pack, old commit by abbreviated sha`,
      r.inflate.oldCompared.ours.rssMb,
    ],
  ];
  const smallest = r.history[0]?.compared.ours.rssMb;
  const largest = r.history.at(-1)?.compared.ours.rssMb;
  const growth = spread([(largest?.median ?? 0) / (smallest?.median ?? 1)]);
  growth.max = (largest?.max ?? 0) / (smallest?.min ?? 1);
  const hash = r.hashing.large.throughputRatio;
  return [
    atMost('first deploy', s.first.ratio, 1.2, '×', '≤ 1.2× native'),
    atMost('incremental deploy', s.incremental.ratio, 0.5, '×', '≤ 0.5× native'),
    atMost('lockfile change + new vendor pin', s.lockChange.ratio, 1.0, '×', '≤ 1.0× native'),
    ...rss.map(([name, v]) => atMost(`peak RSS: ${name}`, v, 150, 'MB', '≤ 150 MB')),
    atMost('peak RSS flat, smallest to largest history', growth, 1.2, '×', 'growth ≤ 1.2×'),
    atMost('vendor-sync no-op, whole command', r.syncNoop.ours.seconds, 0.5, 's', '≤ 0.5 s'),
    {
      scenario: 'hash verification, large files (throughput vs sha512sum)',
      target: '≥ 1.0×',
      median: hash.median,
      worst: hash.min,
      unit: '×',
      met: hash.median >= 1.0 && hash.min >= 1.0 / 1.25,
    },
  ];
}
