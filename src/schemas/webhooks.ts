import { Type, type Static } from '@sinclair/typebox'
import { WEBHOOK_DELIVERY_STATUSES, WEBHOOK_EVENT_TYPES, WEBHOOK_STATUSES } from '../constants.js'
import { IsoDate, NullableDate, PageQuery } from './common.js'
import { NO_CONTROL } from './documents.js'

export const WebhookEventType = Type.Union(WEBHOOK_EVENT_TYPES.map(t => Type.Literal<string>(t)))
export const WebhookStatus = Type.Union(WEBHOOK_STATUSES.map(s => Type.Literal<string>(s)))
export const DeliveryStatus = Type.Union(WEBHOOK_DELIVERY_STATUSES.map(s => Type.Literal<string>(s)))

const Url = Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://[^\\s]+$', description: 'http(s) URL the events are POSTed to; no credentials in it' })
const Events = Type.Array(Type.Union([WebhookEventType, Type.Literal('*')]), { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length + 1, uniqueItems: true, description: 'event types to receive; `*` = all' })
const WebhookDescription = Type.String({ maxLength: 500, pattern: NO_CONTROL })

export const Webhook = Type.Object({
  id: Type.String(),
  url: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  events: Type.Array(Type.String()),
  status: WebhookStatus,
  statusReason: Type.Union([Type.String(), Type.Null()], { description: 'why it is failing or disabled' }),
  createdAt: IsoDate,
  updatedAt: IsoDate,
  lastSuccessAt: NullableDate,
})
export type WebhookDto = Static<typeof Webhook>

const Secret = Type.String({ description: 'the signing secret (`whsec_...`), shown only in this answer; verify deliveries with it (docs/webhooks.md)' })
export const WebhookWithSecret = Type.Object({ ...Webhook.properties, secret: Secret })
export const WebhookMaybeSecret = Type.Object({ ...Webhook.properties, secret: Type.Optional(Secret) })

export const CreateWebhook = Type.Object({ url: Url, events: Events, description: Type.Optional(WebhookDescription) }, { additionalProperties: false })
export const UpdateWebhook = Type.Object({
  url: Type.Optional(Url),
  events: Type.Optional(Events),
  description: Type.Optional(Type.Union([WebhookDescription, Type.Null()])),
  status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')], { description: 'disabled: nothing is sent; active: sent again (also clears failing)' })),
  rotateSecret: Type.Optional(Type.Boolean({ description: 'true: a new signing secret, shown once in this answer; the old one stops at once' })),
}, { additionalProperties: false })

export const Attempt = Type.Object({
  at: IsoDate,
  statusCode: Type.Union([Type.Integer(), Type.Null()]),
  durationMs: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
  response: Type.Union([Type.String(), Type.Null()], { description: 'the first 1 KiB of the answer' }),
})

export const Delivery = Type.Object({
  id: Type.String(),
  eventId: Type.String({ description: 'the webhook-id header: the same on every attempt and redelivery' }),
  type: Type.String(),
  status: DeliveryStatus,
  attempts: Type.Array(Attempt),
  createdAt: IsoDate,
  deliveredAt: NullableDate,
  retryUntil: IsoDate,
})
export type DeliveryDto = Static<typeof Delivery>

export const DeliveryQuery = Type.Object({ ...PageQuery, status: Type.Optional(DeliveryStatus) }, { additionalProperties: false })

export const Queued = Type.Object({ deliveryId: Type.String(), eventId: Type.String(), status: DeliveryStatus })
