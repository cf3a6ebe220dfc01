import { hashText53 } from '../util/text-hash.ts'

/**
 * vLLM production-stack's `HashTrie` (`prefix/hashtrie.py`; research note §3): the request text is
 * cut into `chunkChars` characters (a trailing partial chunk included), each chunk is hashed on its
 * own, and the hashes are the edges of a trie whose nodes hold the set of endpoints that were sent
 * a request through them. The position in the trie is what chains the chunks.
 *
 * The original never evicts (its issue #687: unbounded memory, router OOM after 2 h). Here the
 * trie holds at most `maxNodes` nodes and drops least recently inserted leaves first.
 */
export interface PrefixHashTrie {
  insert(text: string, endpointId: string): void
  /**
   * The original's `longest_prefix_match`: walks chunk by chunk while some of the still-selected
   * endpoints hold the next chunk, narrowing the selection to those. `matchedChars` counts whole
   * chunks, as the original does; with no match the selection is all of `available`.
   */
  longestPrefixMatch(text: string, available: ReadonlySet<string>): TrieMatch
  readonly nodeCount: number
}

export interface TrieMatch {
  readonly matchedChars: number
  readonly endpoints: ReadonlySet<string>
}

export interface PrefixHashTrieOptions {
  /** `chunk_size` of the original, in characters (128). */
  readonly chunkChars: number
  readonly maxNodes: number
}

interface TrieNode {
  readonly key: number
  readonly parent: TrieNode | undefined
  readonly children: Map<number, TrieNode>
  readonly endpoints: Set<string>
  // Recency list links; the root is never on the list.
  newer: TrieNode | undefined
  older: TrieNode | undefined
}

export function createPrefixHashTrie(options: PrefixHashTrieOptions): PrefixHashTrie {
  const { chunkChars, maxNodes } = options
  const root = newNode(0, undefined)
  let nodeCount = 0
  let newest: TrieNode | undefined
  let oldest: TrieNode | undefined

  const unlink = (node: TrieNode): void => {
    if (node.newer) node.newer.older = node.older
    else newest = node.older
    if (node.older) node.older.newer = node.newer
    else oldest = node.newer
    node.newer = undefined
    node.older = undefined
  }

  const touch = (node: TrieNode): void => {
    if (newest === node) return
    if (node.newer !== undefined || node.older !== undefined || oldest === node) unlink(node)
    node.older = newest
    if (newest) newest.newer = node
    newest = node
    oldest ??= node
  }

  const evictOldest = (): void => {
    const node = oldest
    if (node === undefined) return
    unlink(node)
    node.parent?.children.delete(node.key)
    nodeCount--
  }

  return {
    insert(text, endpointId) {
      root.endpoints.add(endpointId)
      const path: TrieNode[] = []
      let node = root
      for (let start = 0; start < text.length; start += chunkChars) {
        const key = hashText53(text, start, Math.min(start + chunkChars, text.length))
        let child = node.children.get(key)
        if (child === undefined) {
          child = newNode(key, node)
          node.children.set(key, child)
          nodeCount++
        }
        child.endpoints.add(endpointId)
        path.push(child)
        node = child
      }
      // Touching leaf first, root-most last keeps every parent newer than its children, so the
      // oldest node is always a leaf and evicting it never orphans a subtree.
      for (let i = path.length - 1; i >= 0; i--) touch(path[i]!)
      while (nodeCount > maxNodes) evictOldest()
    },

    longestPrefixMatch(text, available) {
      let node = root
      let matchedChars = 0
      let selected: ReadonlySet<string> = available
      for (let start = 0; start < text.length; start += chunkChars) {
        const key = hashText53(text, start, Math.min(start + chunkChars, text.length))
        const child = node.children.get(key)
        if (child === undefined) break
        const narrowed = intersect(child.endpoints, selected)
        if (narrowed.size === 0) break
        matchedChars += chunkChars
        selected = narrowed
        node = child
      }
      return { matchedChars, endpoints: selected }
    },

    get nodeCount() {
      return nodeCount
    },
  }
}

function newNode(key: number, parent: TrieNode | undefined): TrieNode {
  return {
    key,
    parent,
    children: new Map(),
    endpoints: new Set(),
    newer: undefined,
    older: undefined,
  }
}

function intersect(a: ReadonlySet<string>, b: ReadonlySet<string>): Set<string> {
  const out = new Set<string>()
  const [small, large] = a.size <= b.size ? [a, b] : [b, a]
  for (const value of small) if (large.has(value)) out.add(value)
  return out
}
