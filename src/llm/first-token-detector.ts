/**
 * Spots the first generated token in a streamed OpenAI response without parsing every event:
 * the first chunk carrying a non-empty `content` or `text` value. Role-only preludes
 * (`"delta":{"role":"assistant","content":""}`) do not count. Works on raw bytes as they arrive.
 */
const MARKERS = ['"content":"', '"text":"']

export function hasGeneratedText(chunk: Buffer): boolean {
  const text = chunk.toString('latin1')
  for (const marker of MARKERS) {
    let at = text.indexOf(marker)
    while (at !== -1) {
      const next = text.charCodeAt(at + marker.length)
      if (!Number.isNaN(next) && next !== 0x22) return true
      at = text.indexOf(marker, at + marker.length)
    }
  }
  return false
}
