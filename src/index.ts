// The package's one public entry: what an embedder needs to run Aya, its simulator and its
// benchmark from code. Importing it starts nothing.

export { type Aya, type AyaAddresses, type AyaDeps, createAya } from './aya.ts'
export type { PickContext, Picker, PickerDeps } from './balancer/picker.ts'
export type { PickerDefinition } from './balancer/picker-definition.ts'
export { findPicker, PICKERS, pickerNames } from './balancer/picker-registry.ts'
export {
  type AyaBranch,
  type AyaBranchDecision,
  type AyaCandidate,
  type AyaDecision,
  ayaBranchChannel,
  ayaDecisionChannel,
} from './balancer/pickers/aya-decision.ts'
export { type AyaOptions, ayaOptionsSchema } from './balancer/pickers/aya-options.ts'
export { runBench } from './bench/bench-runner.ts'
export { runDesPolicy } from './bench/des-runner.ts'
export { ConfigError, type ConfigIssue } from './config/config-error.ts'
export { loadConfigFile, parseConfigObject, parseConfigText } from './config/load.ts'
export { type Config, configSchema } from './config/schema.ts'
export {
  createEngineMetricsScraper,
  type EngineMetricsScraper,
} from './llm/engine-metrics-scraper.ts'
export type {
  EngineMetricsSource,
  EngineSnapshot,
  KvLayout,
} from './llm/engine-snapshot.ts'
export { llmApiFor, parseLlmBody, toLlmRequest } from './llm/llm-body.ts'
export type { LlmApi, LlmRequest } from './llm/llm-request.ts'
export { createModelRegistry } from './llm/model-registry.ts'
export { type AdmissionQueue, createAdmissionQueue } from './resilience/admission-queue.ts'
export type {
  AdmissionOutcome,
  AdmissionQueueOptions,
  AdmissionRequest,
  AdmissionTicket,
} from './resilience/admission-types.ts'
export { createEngine } from './sim/engine.ts'
export { startEngineServer } from './sim/engine-server.ts'
export type { Engine, EngineOptions } from './sim/engine-types.ts'
export { createSimFleet, type SimFleet } from './sim/fleet.ts'
export { createMemoryState } from './state/memory-state.ts'
export type { BucketResult, BucketSpec, StateStore } from './state/state-store.ts'
export { type Clock, createSystemClock, type Timer } from './util/clock.ts'
export { createManualClock } from './util/manual-clock.ts'
export { createSeededRandom, createSystemRandom, type Random } from './util/random.ts'
