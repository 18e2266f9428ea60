// Types of scripts/protection-markers.mjs, for the unit test that reads it.
export type Edit = [where: string, find: string, replace: string];
export type Check = {case: string; edits: Edit[]};
export function spanAfter(lines: string[], at: number): [number, number];
export function locate(
  root: string,
  compiled: Map<string, {file: string; line: number; rel: string}[]>,
  edit: Edit,
): {file: string; text: string; at: number; end: number};
export function markerFaults(root: string, checks: Check[]): string[];
export function sourceMarkers(
  root: string,
): Map<string, {file: string; line: number; rel: string}[]>;
export function compiledMarkers(
  root: string,
): Map<string, {file: string; line: number; rel: string}[]>;
