import { channel } from 'node:diagnostics_channel'

/**
 * The data plane, policies, health and resilience publish here; metrics and logs subscribe.
 * Publishing costs nothing measurable when nobody listens (`hasSubscribers`).
 */
export const CHANNELS = {
  requestDone: 'aya:request:done',
  configReloaded: 'aya:config:reloaded',
} as const

export const requestDoneChannel = channel(CHANNELS.requestDone)
export const configReloadedChannel = channel(CHANNELS.configReloaded)
