// A bounded least-recently-used map: a Map for lookup plus a doubly linked
// recency list, so a hit moves pointers and never mutates the Map (V8 Maps
// degrade badly under constant delete+re-insert).

interface Entry<K, V> {
  key: K;
  value: V;
  newer: Entry<K, V> | null;
  older: Entry<K, V> | null;
}

export class Lru<K, V> {
  private readonly map = new Map<K, Entry<K, V>>();
  private newest: Entry<K, V> | null = null;
  private oldest: Entry<K, V> | null = null;
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

  private unlink(e: Entry<K, V>): void {
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    e.newer = e.older = null;
  }

  private pushNewest(e: Entry<K, V>): void {
    e.older = this.newest;
    e.newer = null;
    if (this.newest) this.newest.newer = e;
    this.newest = e;
    if (!this.oldest) this.oldest = e;
  }

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (e !== this.newest) {
      this.unlink(e);
      this.pushNewest(e);
    }
    return e.value;
  }

  /** Like get() but neither counts nor refreshes recency. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  set(key: K, value: V): void {
    if (this.max === 0) return;
    const old = this.map.get(key);
    if (old) {
      old.value = value;
      if (old !== this.newest) {
        this.unlink(old);
        this.pushNewest(old);
      }
      return;
    }
    const e: Entry<K, V> = { key, value, newer: null, older: null };
    this.map.set(key, e);
    this.pushNewest(e);
    this.evict();
  }

  private evict(): void {
    while (this.map.size > this.max && this.oldest) {
      const e = this.oldest;
      this.unlink(e);
      this.map.delete(e.key);
    }
  }

  resize(max: number): void {
    if (!(max >= 0)) throw new RangeError(`LRU size must be >= 0, got ${max}`);
    this.max = max;
    this.evict();
  }

  clear(): void {
    this.map.clear();
    this.newest = this.oldest = null;
    this.hits = 0;
    this.misses = 0;
  }
}
