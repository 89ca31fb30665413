export * from './users.js'
export * from './documents.js'
export * from './ingestions.js'
export * from './api-keys.js'
