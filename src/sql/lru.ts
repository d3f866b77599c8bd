// A bounded least-recently-used map (insertion order of a Map is the recency order).

export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  hits = 0;
  misses = 0;

  constructor(private max: number) {
    if (!(max >= 0)) throw new RangeError(`LRU size must be >= 0, got ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  get capacity(): number {
    return this.max;
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // refresh recency
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  /** Like get() but neither counts nor refreshes recency. */
  peek(key: K): V | undefined {
    return this.map.get(key);
  }

  set(key: K, value: V): void {
    if (this.max === 0) return;
    if (this.map.has(key)) this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next().value as K;
      this.map.delete(oldest);
    }
  }

  resize(max: number): void {
    if (!(max >= 0)) throw new RangeError(`LRU size must be >= 0, got ${max}`);
    this.max = max;
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }

  clear(): void {
    this.map.clear();
    this.hits = 0;
    this.misses = 0;
  }
}
