/**
 * A client's registered topic ids (§6.5, §7.3: one table per client, so a wrong id from one client
 * can never hit another client's topic). Ids run from 1 and are never 0x0000 or 0xFFFF.
 */
export class TopicTable {
  private readonly idsByName = new Map<string, number>();
  private readonly namesById = new Map<number, string>();
  private nextId = 1;

  constructor(private readonly maxTopics: number) {}

  get size(): number {
    return this.idsByName.size;
  }

  idOf(name: string): number | undefined {
    return this.idsByName.get(name);
  }

  nameOf(id: number): string | undefined {
    return this.namesById.get(id);
  }

  /** The id for `name`, registering it if new; undefined when the table is full. */
  register(name: string): number | undefined {
    const known = this.idsByName.get(name);
    if (known !== undefined) return known;
    if (this.idsByName.size >= this.maxTopics) return undefined;
    while (this.namesById.has(this.nextId) || this.nextId === 0 || this.nextId === 0xffff) {
      this.nextId = this.nextId >= 0xfffe ? 1 : this.nextId + 1;
    }
    const id = this.nextId;
    this.nextId = id >= 0xfffe ? 1 : id + 1;
    this.idsByName.set(name, id);
    this.namesById.set(id, name);
    return id;
  }

  /** Drops one mapping (a REGISTER the device refused). */
  forget(name: string): void {
    const id = this.idsByName.get(name);
    if (id === undefined) return;
    this.idsByName.delete(name);
    this.namesById.delete(id);
  }

  clear(): void {
    this.idsByName.clear();
    this.namesById.clear();
    this.nextId = 1;
  }

  entries(): IterableIterator<[string, number]> {
    return this.idsByName.entries();
  }
}
