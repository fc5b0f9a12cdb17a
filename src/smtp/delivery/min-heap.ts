/**
 * A binary min-heap: push and pop in O(log n), peek in O(1). The delivery schedule keeps its due times in these,
 * so a commit or a finished send costs O(log n) instead of a sort of the whole queue.
 *
 * Removal is lazy: the owner marks a node stale (its own bookkeeping) and skips it when it reaches the top;
 * `compact` drops stale nodes in O(n) once they outnumber the live ones, which keeps that amortised O(1).
 */
export class MinHeap<T> {
  private nodes: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.nodes.length;
  }

  peek(): T | undefined {
    return this.nodes[0];
  }

  push(node: T): void {
    const nodes = this.nodes;
    nodes.push(node);
    let i = nodes.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(nodes[i]!, nodes[parent]!)) break;
      [nodes[i], nodes[parent]] = [nodes[parent]!, nodes[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const nodes = this.nodes;
    const top = nodes[0];
    const last = nodes.pop();
    if (nodes.length > 0 && last !== undefined) {
      nodes[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  /** Keeps only the nodes `keep` accepts (O(n)); the caller does it when stale nodes outnumber live ones. */
  compact(keep: (node: T) => boolean): void {
    this.nodes = this.nodes.filter(keep);
    for (let i = (this.nodes.length >> 1) - 1; i >= 0; i -= 1) this.siftDown(i);
  }

  private siftDown(start: number): void {
    const nodes = this.nodes;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < nodes.length && this.before(nodes[left]!, nodes[least]!)) least = left;
      if (right < nodes.length && this.before(nodes[right]!, nodes[least]!)) least = right;
      if (least === i) return;
      [nodes[i], nodes[least]] = [nodes[least]!, nodes[i]!];
      i = least;
    }
  }
}
