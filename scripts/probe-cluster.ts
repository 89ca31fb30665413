// Diagnostic (not a test) for Redis Cluster clients that outlive their close: starts a cluster on
// 7131-7133, makes the clients as Quire does plus a QueueEvents, closes them and prints every Cluster
// client's status history. `node --import tsx scripts/probe-cluster.ts ready|connecting|down [ms]|deadstart [ms]`.
// `down` shows what remains: a Worker's graceful close waits for commands queued offline while the
// nodes are down (src/worker-runner.ts falls back to disconnect()).
import { Cluster } from 'ioredis'
import { Queue, Worker, QueueEvents } from 'bullmq'
import { setTimeout as sleep } from 'node:timers/promises'
import { startCluster } from './redis-local.js'
import { createRedis, bullPrefix } from '../src/redis.js'

const all = new Set<any>()
const orig = (Cluster.prototype as any).setStatus
let n = 0
;(Cluster.prototype as any).setStatus = function (s: string) {
  if (!all.has(this)) { all.add(this); this.__id = ++n; this.__hist = []; this.__where = (new Error().stack ?? '').split('\n').filter(l => /bullmq|src\/|probe/.test(l)).slice(0, 2).map(l => l.trim().replace(/.*\/(node_modules|scripts|src)\//, '')).join(' < ') }
  this.__hist.push(s)
  return orig.call(this, s)
}
const scenario = process.argv[2] ?? 'ready'
const cluster = await startCluster([7131, 7132, 7133])
if (scenario === 'deadstart') await cluster.stop()
const target = { REDIS_URL: 'redis://127.0.0.1:7131', REDIS_CLUSTER_NODES: cluster.seeds, REDIS_PREFIX: 'probe' }
const prefix = bullPrefix(target)
const redis = createRedis(target, { enableAutoPipelining: true, commandTimeout: 2000 }); redis.on('error', () => {})
const qconn = createRedis(target, { maxRetriesPerRequest: 1 }); qconn.on('error', () => {})
const q = new Queue('probe', { connection: qconn, prefix }); q.on('error', () => {})
const wconn = createRedis(target, { maxRetriesPerRequest: null, enableOfflineQueue: true }); wconn.on('error', () => {})
const w = new Worker('probe', async () => {}, { connection: wconn, prefix, autorun: true }); w.on('error', () => {})
const econn = createRedis(target, { maxRetriesPerRequest: null, enableOfflineQueue: true }); econn.on('error', () => {})
const qe = new QueueEvents('probe', { connection: econn, prefix }); qe.on('error', () => {})
if (scenario === 'deadstart') await sleep(Number(process.argv[3] ?? 500))
else if (scenario !== 'connecting') { await w.waitUntilReady(); await qe.waitUntilReady() }
if (scenario === 'down') { await cluster.stop(); await sleep(Number(process.argv[3] ?? 500)) }
const t0 = Date.now()
const closeAll = async () => {
  const timed = async (name: string, p: Promise<unknown>) => { const s = Date.now(); await p.catch(e => console.log(name, 'err', e.message)); console.log(name, 'closed in', Date.now() - s, 'ms') }
  await Promise.allSettled([timed('queue', q.close()), timed('worker', w.close()), timed('events', qe.close())])
  redis.disconnect(); qconn.disconnect(); wconn.disconnect(); econn.disconnect()
}
const r = await Promise.race([closeAll().then(() => 'closed'), sleep(15000, undefined, { ref: false }).then(() => 'TIMEOUT')])
console.log(scenario, r, Date.now() - t0, 'ms')
await cluster.stop()
const report = () => {
  for (const c of all) console.log(`cluster#${c.__id} status=${c.status} manual=${c.manuallyClosing} retry=${c.reconnectTimeout != null} nodes=${c.nodes().length} offline=${c.offlineQueue?.length} hist=${c.__hist.slice(0, 14).join(',')}${c.__hist.length > 14 ? '...' : ''} at ${c.__where}`)
  const wa = w as any; console.log('worker waiting', wa.waiting != null, 'queue', wa.mainLoopQueue?.numTotal(), 'closing', wa.closing != null, 'mainLoopRunning', wa.mainLoopRunning != null)
  console.log('resources', process.getActiveResourcesInfo().join(','))
}
report()
const started = Date.now()
process.on('exit', (code) => console.log('exit after close+stop in', Date.now() - started, 'ms, code', code))
setTimeout(() => { console.log('--- still alive after 20s'); report(); process.exit(3) }, 20000).unref()
