import { consistentHashSessionPicker } from '../../src/balancer/pickers/consistent-hash-session.ts'
import { llmdPrefixLoadPicker } from '../../src/balancer/pickers/llm-d-prefix-load.ts'
import { llmdStickyPicker } from '../../src/balancer/pickers/llm-d-sticky.ts'
import { sglangCacheAwarePicker } from '../../src/balancer/pickers/sglang-cache-aware.ts'
import { vllmPrefixAwarePicker } from '../../src/balancer/pickers/vllm-prefix-aware.ts'
import { runPickerConformance } from './picker.conformance.ts'

runPickerConformance(sglangCacheAwarePicker, { weighted: false, hashed: undefined, loadAware: true })
runPickerConformance(llmdPrefixLoadPicker, { weighted: false, hashed: undefined })
runPickerConformance(llmdStickyPicker, { weighted: false, hashed: undefined, loadAware: true })
runPickerConformance(vllmPrefixAwarePicker, { weighted: false, hashed: undefined })
runPickerConformance(consistentHashSessionPicker, { weighted: true, hashed: 'key' })
runPickerConformance(consistentHashSessionPicker, { weighted: true, hashed: 'key', policyOptions: { vnodesPerWeight: 4096 }, label: 'dense ring' })
runPickerConformance(consistentHashSessionPicker, { weighted: true, hashed: 'key', policyOptions: { algorithm: 'maglev' }, label: 'maglev' })
