/**
 * SGLang's approximate radix tree (sgl-router `tree.rs`, SMG `kv_index/string_tree.rs`; research
 * note §2): one tree of raw request text per model, shared by every worker ("tenant"). Each node
 * records which tenants were routed a request through it, with an access tick for LRU. The router
 * writes it only when it routes; nothing is learnt from the engines.
 *
 * Size is counted as SGLang counts it: per tenant, the characters of every node that tenant is on.
 * Eviction removes a tenant from its least recently used leaves (nodes where none of its children
 * carries the tenant) until the tenant is under the limit; a node no tenant is left on is dropped.
 */
export interface ApproxRadixTree {
  /** Adds `text` as routed to `tenant`, stamping its whole path as just used. */
  insert(text: string, tenant: string): void
  /**
   * The longest prefix of `text` that some candidate tenant holds, and the candidates holding all
   * of it, most recently used first. Empty text or no match gives 0 and no tenants.
   */
  match(text: string, isCandidate?: (tenant: string) => boolean): RadixMatch
  /** Characters the tenant is charged for. */
  tenantChars(tenant: string): number
  /** SGLang's periodic pass: every tenant over `maxCharsPerTenant` loses LRU leaves until under. */
  evict(): void
  /**
   * Forgets every tenant not in `keep` (SGLang's `remove_tenant` for a worker that left), and the
   * nodes no tenant is left on: the periodic pass trims only tenants over the limit, so a departed
   * one would keep its characters for good.
   */
  retainOnly(keep: ReadonlySet<string>): void
  readonly nodeCount: number
}

export interface RadixMatch {
  readonly matchedChars: number
  readonly tenants: readonly string[]
}

export interface ApproxRadixTreeOptions {
  /** SGLang's `max_tree_size`, which it counts in characters per tenant. */
  readonly maxCharsPerTenant: number
  /**
   * Between periodic passes a tenant may grow to this multiple of the limit before an insert evicts
   * it at once, so memory stays bounded however fast requests arrive. Default 2.
   */
  readonly overrunFactor?: number
}

interface RadixNode {
  text: string
  parent: RadixNode | undefined
  /** Keyed by the first UTF-16 code unit of the child's text. */
  readonly children: Map<number, RadixNode>
  /** Tenant → tick of its last insert through this node. */
  readonly tenants: Map<string, number>
}

interface EvictionEntry {
  readonly tick: number
  readonly node: RadixNode
}

const NO_MATCH: RadixMatch = Object.freeze({ matchedChars: 0, tenants: Object.freeze([]) })
const anyTenant = (): boolean => true

export function createApproxRadixTree(options: ApproxRadixTreeOptions): ApproxRadixTree {
  const maxChars = options.maxCharsPerTenant
  const overrunChars = maxChars * (options.overrunFactor ?? 2)
  const root = newNode('', undefined)
  const charsByTenant = new Map<string, number>()
  let nodeCount = 0
  // A counter, not the clock: LRU needs only an order, and SGLang uses an epoch counter too.
  let tick = 0

  const charge = (tenant: string, chars: number): void => {
    charsByTenant.set(tenant, (charsByTenant.get(tenant) ?? 0) + chars)
  }

  const attach = (node: RadixNode, tenant: string, now: number): void => {
    if (!node.tenants.has(tenant)) charge(tenant, node.text.length)
    node.tenants.set(tenant, now)
  }

  const evictTenant = (tenant: string, leaves: EvictionEntry[]): void => {
    const heap = createMinHeap(leaves)
    let chars = charsByTenant.get(tenant) ?? 0
    while (chars > maxChars) {
      const entry = heap.pop()
      if (entry === undefined) break
      const { node } = entry
      if (node.tenants.get(tenant) !== entry.tick) continue
      node.tenants.delete(tenant)
      chars -= node.text.length
      const parent = node.parent
      if (node.tenants.size === 0 && node.children.size === 0 && parent !== undefined) {
        parent.children.delete(node.text.charCodeAt(0))
        node.parent = undefined
        nodeCount--
      }
      if (parent !== undefined && parent !== root && isLeafFor(parent, tenant)) {
        heap.push({ tick: parent.tenants.get(tenant)!, node: parent })
      }
    }
    if (chars > 0) charsByTenant.set(tenant, chars)
    else charsByTenant.delete(tenant)
  }

  const evictOver = (limitChars: number): void => {
    const over = new Map<string, EvictionEntry[]>()
    for (const [tenant, chars] of charsByTenant) if (chars > limitChars) over.set(tenant, [])
    if (over.size === 0) return
    // One walk collects every over-limit tenant's leaves; the heap then evicts oldest first.
    const stack: RadixNode[] = [...root.children.values()]
    while (stack.length > 0) {
      const node = stack.pop()!
      for (const [tenant, leaves] of over) {
        const at = node.tenants.get(tenant)
        if (at !== undefined && isLeafFor(node, tenant)) leaves.push({ tick: at, node })
      }
      for (const child of node.children.values()) stack.push(child)
    }
    for (const [tenant, leaves] of over) evictTenant(tenant, leaves)
  }

  return {
    insert(text, tenant) {
      const now = ++tick
      let node = root
      let offset = 0
      while (offset < text.length) {
        const child = node.children.get(text.charCodeAt(offset))
        if (child === undefined) {
          const leaf = newNode(detach(text.slice(offset)), node)
          node.children.set(text.charCodeAt(offset), leaf)
          nodeCount++
          attach(leaf, tenant, now)
          node = leaf
          break
        }
        const shared = sharedPrefixLength(text, offset, child.text)
        if (shared < child.text.length) {
          // Split: the shared head becomes a new node on everyone's path; the child keeps the tail.
          const head = newNode(detach(child.text.slice(0, shared)), node)
          for (const [owner, at] of child.tenants) head.tenants.set(owner, at)
          child.text = detach(child.text.slice(shared))
          child.parent = head
          head.children.set(child.text.charCodeAt(0), child)
          node.children.set(head.text.charCodeAt(0), head)
          nodeCount++
          node = head
        } else {
          node = child
        }
        attach(node, tenant, now)
        offset += shared
      }
      if ((charsByTenant.get(tenant) ?? 0) > overrunChars) evictOver(maxChars)
    },

    match(text, isCandidate = anyTenant) {
      let node = root
      let matched = 0
      let deepest: RadixNode | undefined
      while (matched < text.length) {
        const child = node.children.get(text.charCodeAt(matched))
        if (child === undefined || !hasCandidate(child, isCandidate)) break
        const shared = sharedPrefixLength(text, matched, child.text)
        matched += shared
        deepest = child
        if (shared < child.text.length) break
        node = child
      }
      if (deepest === undefined) return NO_MATCH
      const tenants = [...deepest.tenants]
        .filter(([tenant]) => isCandidate(tenant))
        .sort((a, b) => b[1] - a[1])
        .map(([tenant]) => tenant)
      return { matchedChars: matched, tenants }
    },

    tenantChars: (tenant) => charsByTenant.get(tenant) ?? 0,
    evict: () => evictOver(maxChars),
    retainOnly(keep) {
      const gone = [...charsByTenant.keys()].filter((tenant) => !keep.has(tenant))
      if (gone.length === 0) return
      // Children before their parents, so a node emptied of tenants is a leaf when it is reached.
      const order: RadixNode[] = []
      const stack: RadixNode[] = [...root.children.values()]
      while (stack.length > 0) {
        const node = stack.pop()!
        order.push(node)
        for (const child of node.children.values()) stack.push(child)
      }
      for (let i = order.length - 1; i >= 0; i--) {
        const node = order[i]!
        for (const tenant of gone) node.tenants.delete(tenant)
        if (node.tenants.size === 0 && node.children.size === 0 && node.parent !== undefined) {
          node.parent.children.delete(node.text.charCodeAt(0))
          node.parent = undefined
          nodeCount--
        }
      }
      for (const tenant of gone) charsByTenant.delete(tenant)
    },
    get nodeCount() {
      return nodeCount
    },
  }
}

function newNode(text: string, parent: RadixNode | undefined): RadixNode {
  return { text, parent, children: new Map(), tenants: new Map() }
}

function hasCandidate(node: RadixNode, isCandidate: (tenant: string) => boolean): boolean {
  for (const tenant of node.tenants.keys()) if (isCandidate(tenant)) return true
  return false
}

function isLeafFor(node: RadixNode, tenant: string): boolean {
  for (const child of node.children.values()) if (child.tenants.has(tenant)) return false
  return true
}

function sharedPrefixLength(text: string, offset: number, nodeText: string): number {
  const limit = Math.min(text.length - offset, nodeText.length)
  let i = 0
  while (i < limit && text.charCodeAt(offset + i) === nodeText.charCodeAt(i)) i++
  return i
}

// V8 keeps a slice's whole parent string alive, so a node holding a short tail of a long prompt
// would pin the prompt. Copying makes the memory match the characters we count.
const SLICE_MIN_LENGTH = 13

function detach(text: string): string {
  return text.length < SLICE_MIN_LENGTH ? text : Buffer.from(text, 'utf16le').toString('utf16le')
}

interface MinHeap {
  push(entry: EvictionEntry): void
  pop(): EvictionEntry | undefined
}

function createMinHeap(initial: EvictionEntry[]): MinHeap {
  const items = initial
  const less = (i: number, j: number): boolean => items[i]!.tick < items[j]!.tick
  const swap = (i: number, j: number): void => {
    const t = items[i]!
    items[i] = items[j]!
    items[j] = t
  }
  const down = (start: number): void => {
    let i = start
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < items.length && less(left, smallest)) smallest = left
      if (right < items.length && less(right, smallest)) smallest = right
      if (smallest === i) return
      swap(i, smallest)
      i = smallest
    }
  }
  for (let i = (items.length >>> 1) - 1; i >= 0; i--) down(i)
  return {
    push(entry) {
      items.push(entry)
      let i = items.length - 1
      while (i > 0) {
        const parent = (i - 1) >>> 1
        if (!less(i, parent)) return
        swap(i, parent)
        i = parent
      }
    },
    pop() {
      if (items.length === 0) return undefined
      const top = items[0]!
      const last = items.pop()!
      if (items.length > 0) {
        items[0] = last
        down(0)
      }
      return top
    },
  }
}
