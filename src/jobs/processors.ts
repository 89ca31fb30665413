import type { JobDefinition } from './types.js'
import type { JobName } from './catalogue.js'
import noop from './noop.js'
import auditPurge from './audit-purge.js'
import ingestionDispatch from './ingestion-dispatch.js'
import ingestionCallbackTimeout from './ingestion-callback-timeout.js'
import ingestionRecovery from './ingestion-recovery.js'
import ingestionBatch from './ingestion-batch.js'
import documentThumbnail from './thumbnail.js'
import documentScan, { scanSweep } from './document-scan.js'
import { thumbnailSweep } from './thumbnail-sweep.js'
import deleteObjects from './delete-objects.js'
import trashPurge from './trash-purge.js'
import uploadsSweep from './uploads-sweep.js'
import storageReconcile from './storage-reconcile.js'
import versionsPrune from './versions-prune.js'
import webhookRelay from './webhook-relay.js'
import webhookDeliver from './webhook-deliver.js'
import webhookBatch from './webhook-batch.js'
import webhookPurge from './webhook-purge.js'

/**
 * What the worker runs for each job of the catalogue (one processor per name, checked by the
 * compiler). Only the worker imports this: processors load what their job needs (sharp...).
 */
export const processors: { [N in JobName]: JobDefinition<any> } = {
  noop,
  'audit-purge': auditPurge,
  'ingestion-dispatch': ingestionDispatch,
  'ingestion-callback-timeout': ingestionCallbackTimeout,
  'ingestion-recovery': ingestionRecovery,
  'ingestion-batch': ingestionBatch,
  'document-thumbnail': documentThumbnail,
  'document-scan': documentScan,
  'scan-sweep': scanSweep,
  'thumbnail-sweep': thumbnailSweep,
  'delete-objects': deleteObjects,
  'trash-purge': trashPurge,
  'uploads-sweep': uploadsSweep,
  'storage-reconcile': storageReconcile,
  'versions-prune': versionsPrune,
  'webhook-relay': webhookRelay,
  'webhook-deliver': webhookDeliver,
  'webhook-batch': webhookBatch,
  'webhook-purge': webhookPurge,
}
