import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { TObject } from '@sinclair/typebox'
import { catalogue, type JobName } from './catalogue.js'

const checks = new Map<JobName, TypeCheck<TObject>>()

/** Why `data` is not a valid payload of job `name` (the first few errors), or null when it is. */
export function payloadError (name: JobName, data: unknown): string | null {
  let check = checks.get(name)
  if (check === undefined) {
    check = TypeCompiler.Compile(catalogue[name].payload as TObject)
    checks.set(name, check)
  }
  if (check.Check(data)) return null
  return [...check.Errors(data)].slice(0, 3).map(e => `${e.path === '' ? '/' : e.path}: ${e.message}`).join('; ')
}
