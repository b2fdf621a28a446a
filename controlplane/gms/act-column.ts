/**
 * A GNAT's ACT as both GMS stores keep it: JSON in the `act` column of `ges`
 * ('[]' for every other GE and for rows of a GMS older than the column).
 * Read back strictly: a row that does not hold a valid ACT is a broken
 * database, named, never an empty ACT (which would register nothing and
 * allow nothing without saying why).
 */
import type { ActEntry, GeDef } from './model.js';

export function actToColumn(act: readonly ActEntry[] | undefined): string {
  return JSON.stringify(act ?? []);
}

export function actFromColumn(v: unknown, userId: string): ActEntry[] | undefined {
  const text = v === null || v === undefined ? '[]' : String(v);
  let a: unknown;
  try { a = JSON.parse(text); } catch { throw new Error(`GMS database: GE ${userId} has an act column that is not JSON`); }
  if (!Array.isArray(a)) throw new Error(`GMS database: GE ${userId} has an act column that is not a list`);
  const ok = a.every((e) => e && typeof e.name === 'string' && typeof e.address === 'string' &&
    (e.outsideAccess === 'allow' || e.outsideAccess === 'deny') && Array.isArray(e.groups) && e.groups.every((g: unknown) => Number.isInteger(g)) &&
    (e.ports === undefined || (Array.isArray(e.ports) && e.ports.every((p: unknown) => Number.isInteger(p)))) &&
    (e.ge === undefined || typeof e.ge === 'boolean') && (e.via === undefined || typeof e.via === 'string'));
  if (!ok) throw new Error(`GMS database: GE ${userId} has an act entry of an unknown shape`);
  return a.length ? (a as ActEntry[]) : undefined;
}

/** A GE with its ACT from the `act` column (only when it has one: GeDef.act is absent otherwise). */
export function withAct(ge: GeDef, column: unknown): GeDef {
  const act = actFromColumn(column, ge.userId);
  return act ? { ...ge, act } : ge;
}
