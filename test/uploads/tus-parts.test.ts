import t from 'tap'
import { S3Store } from '@tus/s3-store'
import { S3_MAX_PARTS, S3_MIN_PART, TUS_PLANNED_PARTS, TUS_PREFERRED_PART, tusPartSize } from '../../src/storage/tus-store.js'

const GiB = 1024 ** 3
const store = new S3Store({ s3ClientConfig: { bucket: 'b', region: 'us-east-1' }, partSize: TUS_PREFERRED_PART, minPartSize: S3_MIN_PART, maxMultipartParts: TUS_PLANNED_PARTS })
const storeSize = (size: number): number => (store as unknown as { calcOptimalPartSize: (n: number) => number }).calcOptimalPartSize(size)

t.test('the part size grows with the declared length: S3\'s 10,000 parts never cap UPLOAD_MAX_BYTES', async (t) => {
  for (const size of [0, 1, S3_MIN_PART, TUS_PREFERRED_PART, GiB, 20 * GiB, 70 * GiB, 71 * GiB, 100 * GiB, 1024 * GiB, 5 * 1024 * GiB]) {
    const part = tusPartSize(size)
    t.equal(part, storeSize(size), `${size} B: as @tus/s3-store computes it`)
    t.ok(part >= S3_MIN_PART, `${size} B: at least S3's 5 MiB`)
    t.ok(part <= 5 * GiB, `${size} B: at most S3's 5 GiB`)
    const parts = Math.ceil(size / part)
    t.ok(parts <= TUS_PLANNED_PARTS, `${size} B: ${parts} planned parts`)
    t.ok(parts + (S3_MAX_PARTS - TUS_PLANNED_PARTS) <= S3_MAX_PARTS, 'room for 1,000 short parts of interrupted PATCHes')
  }
  t.equal(tusPartSize(GiB), TUS_PREFERRED_PART, '1 GiB: 8 MiB parts (128 of them)')
  t.equal(tusPartSize(100 * GiB), Math.ceil(100 * GiB / TUS_PLANNED_PARTS), '100 GiB: ~11.4 MiB parts')
})
