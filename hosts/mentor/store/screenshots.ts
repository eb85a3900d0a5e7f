/**
 * Screenshot records and their images. A record forwarded with its image (`image_base64`) stores both in
 * one transaction, each once per origin record id: a retried or reconciled forward changes nothing, and a
 * record that arrived earlier without its image (before images were forwarded) gains it on a reconcile.
 */
import type { Database } from '../../../lib/db.js';
import { insertIgnore } from '../../../lib/sql/insertRows.js';
import { RECORD_KINDS } from './records.js';
import type { StoreResult } from './records.js';
import { mapRow, q, rows } from './sql.js';
import type { Row } from './sql.js';

export interface ScreenshotImageRow {
  screenshotid: string;
  contentType: string;
  bytes: Buffer;
}

export async function storeScreenshots(
  db: Database,
  records: Array<Record<string, unknown>>,
  images: readonly ScreenshotImageRow[],
): Promise<StoreResult> {
  if (records.length === 0) return { received: 0, stored: 0, duplicates: 0 };
  const now = Date.now();
  const kind = RECORD_KINDS.screenshots;
  const names = [...Object.keys(kind.columns), 'received_at'];
  const values = records.map((r) =>
    names.map((n) => (n === 'received_at' ? now : n === 'timestamp' ? (r.timestamp ?? now) : (r[n] ?? null))),
  );
  const stored = await db.transaction(async (t) => {
    const n = await insertIgnore(db.sequelize, kind.table, kind.key, names, values, t);
    // One statement per image: bytes are bound as a parameter (the multi-row helper carries JSON, not binary).
    for (const image of images) {
      await db.sequelize.query(
        'INSERT INTO screenshot_images (screenshotid, content_type, size, bytes, received_at) VALUES ($1, $2, $3, $4, $5) ' +
          'ON CONFLICT (screenshotid) DO NOTHING',
        { bind: [image.screenshotid, image.contentType, image.bytes.length, image.bytes, now], transaction: t },
      );
    }
    return n;
  });
  return { received: records.length, stored, duplicates: records.length - stored };
}

/** A device's screenshot records, newest first, each with whether the mentor holds its image. */
export async function listScreenshots(db: Database, deviceid: string, limit: number): Promise<Array<{ record: Row; hasImage: boolean }>> {
  const kind = RECORD_KINDS.screenshots;
  const found = await rows(
    db,
    `SELECT s.*, i.content_type AS image_type FROM screenshots s LEFT JOIN screenshot_images i ON i.screenshotid = s.screenshotid ` +
      `WHERE s.deviceid = $1 ORDER BY s.${q('timestamp')} DESC, s.screenshotid DESC LIMIT $2`,
    [deviceid, limit],
  );
  return found.map((r) => ({ record: mapRow(r, { ...kind.columns, received_at: 'time' }), hasImage: r.image_type != null }));
}

export async function getScreenshotImage(db: Database, screenshotid: string): Promise<{ contentType: string; bytes: Buffer } | null> {
  const [row] = await rows<{ content_type: string; bytes: Buffer | Uint8Array }>(
    db,
    'SELECT content_type, bytes FROM screenshot_images WHERE screenshotid = $1',
    [screenshotid],
  );
  if (!row) return null;
  return { contentType: row.content_type, bytes: Buffer.isBuffer(row.bytes) ? row.bytes : Buffer.from(row.bytes) };
}
