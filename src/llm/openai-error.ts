import { ERROR_CATALOGUE, type ErrorCode, statusForCode } from '../proxy/errors.ts'

/**
 * OpenAI's error body: `{"error":{"message","type","param","code"}}`. The OpenAI SDKs read `type`
 * and `code`; Aya's own code travels in the `x-aya-error-code` header.
 */
export function openAiErrorBody(
  code: ErrorCode,
  options: {
    readonly message?: string | undefined
    readonly param?: string | undefined
    readonly openAiCode?: string | undefined
  },
): string {
  const status = statusForCode(code)
  return JSON.stringify({
    error: {
      message: options.message ?? ERROR_CATALOGUE[code].message,
      type: openAiType(status),
      param: options.param ?? null,
      code: options.openAiCode ?? code,
    },
  })
}

function openAiType(status: number): string {
  if (status === 429) return 'rate_limit_error'
  if (status === 401) return 'authentication_error'
  if (status === 404) return 'invalid_request_error'
  if (status < 500) return 'invalid_request_error'
  return 'server_error'
}
