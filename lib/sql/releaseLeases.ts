/**
 * Give leases back. `reclaimExpiredLeases` returns rows whose dispatcher died (its lease ran out) to the
 * queue without spending an attempt: the crashed attempt may or may not have reached the target, and the
 * receiver de-duplicates on the event id. `releaseOwnLeases` is the graceful-stop path for rows this
 * dispatcher claimed but never sent.
 */
import { QueryTypes } from 'sequelize';
import type { Sequelize } from 'sequelize';

export async function reclaimExpiredLeases(sequelize: Sequelize, now: number): Promise<number> {
  const count = await sequelize.query(
    `UPDATE relay_deliveries SET status = 'pending', lease_until = NULL, lease_owner = NULL, updated_at = :now
      WHERE status = 'inflight' AND lease_until < :now`,
    { replacements: { now }, type: QueryTypes.BULKUPDATE },
  );
  return Number(count ?? 0);
}

export async function releaseOwnLeases(sequelize: Sequelize, owner: string, ids: number[], now: number): Promise<void> {
  if (ids.length === 0) return;
  await sequelize.query(
    `UPDATE relay_deliveries SET status = 'pending', lease_until = NULL, lease_owner = NULL, updated_at = :now
      WHERE id IN (:ids) AND status = 'inflight' AND lease_owner = :owner`,
    { replacements: { now, ids, owner }, type: QueryTypes.BULKUPDATE },
  );
}
