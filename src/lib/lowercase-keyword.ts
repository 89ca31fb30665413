/** Where ajv says the value being validated sits, so a `modifying` keyword can replace it. */
interface DataContext { parentData?: Record<string | number, unknown>, parentDataProperty: string | number }

/**
 * `x-lowercase: true` on a string schema: the validated value is replaced by its lower-case form,
 * in place (an ajv `modifying` keyword, given to ajv in src/options.ts). Ids go through it
 * (schemas/common.ts `Id`), so every comparison after validation (JS, Redis keys, SQL) sees one
 * canonical form.
 */
export const lowercaseKeyword = {
  keyword: 'x-lowercase',
  type: 'string',
  modifying: true,
  schemaType: 'boolean',
  errors: false,
  validate: (enabled: boolean, data: string, _parentSchema: unknown, cxt?: DataContext): boolean => {
    if (enabled && cxt?.parentData !== undefined) cxt.parentData[cxt.parentDataProperty] = data.toLowerCase()
    return true
  },
} as const
