import type { Endpoint } from '../upstream/endpoint.ts'
import type { LoadPeers } from '../upstream/load-peers.ts'
import type { Picker, PickerDeps } from './picker.ts'

/**
 * Where a group's policy meets its router replicas' shared load (`load-peers.ts`): its pacer
 * counts the prompts the other replicas sent as the engine's prefill, tells them of its own as it
 * sends them, and is timed again when theirs change; the announcements say how much of this
 * router's pending prefill is at the engine. The upstream group and the DES bench wire it alike.
 */
export interface PacerLoadLink {
  /** For the policy's picker (its pacer). */
  readonly pickerDeps: Pick<PickerDeps, 'othersSentPrefill' | 'onPrefillSent'>
  /** Starts hearing the other replicas; returns the function that stops. */
  listen(): () => void
}

export function linkPacerToLoadPeers(
  loadPeers: LoadPeers,
  find: (endpointId: string) => Endpoint | undefined,
  /** The policy now (a reload can replace it). */
  picker: () => Picker,
): PacerLoadLink {
  return {
    pickerDeps: {
      othersSentPrefill: (id) => loadPeers.othersSent(id),
      onPrefillSent: (id) => {
        const endpoint = find(id)
        if (endpoint) loadPeers.changed(endpoint)
      },
    },
    listen: () =>
      loadPeers.listen({
        find,
        heard: (id) => picker().pacer?.poke(id),
        // What the current pacer holds is not at the engine; everything else placed there is,
        // including what a pacer a reload replaced let go.
        sentPrefillTokens: (endpoint) =>
          endpoint.own.prefillTokens - (picker().pacer?.heldPrefillTokens(endpoint.id) ?? 0),
      }),
  }
}
