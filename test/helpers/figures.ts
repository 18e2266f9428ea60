import {promises as fsp} from 'node:fs';

/** Whether the long loops of `npm run test:stress` are wanted (else the quick version runs). */
export const STRESS = process.env.REPODEPLOY_STRESS === '1';

/**
 * Record a figure a reliability test measured (switches done, races run, misses) for the generated
 * docs/reliability.md. Written only when the run collects them (REPODEPLOY_FIGURES names the file).
 */
export async function recordFigure(caseId: string, name: string, value: number): Promise<void> {
  const file = process.env.REPODEPLOY_FIGURES;
  if (!file) return;
  await fsp.appendFile(file, `${JSON.stringify({case: caseId, name, value})}\n`);
}
