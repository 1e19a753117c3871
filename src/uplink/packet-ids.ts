/**
 * Packet ids for one broker connection, shared by MQTT.js and the drain. The drain writes its PUBLISHes
 * to the socket itself (drain.ts), so MQTT.js does not know their ids; MQTT.js still sends SUBSCRIBE,
 * UNSUBSCRIBE and the presence PUBLISH with ids of its own. Both take ids from this one allocator (it is
 * MQTT.js's `messageIdProvider`), which never hands out an id in use: no collision whatever either side
 * has outstanding, and the drain's window keeps the whole range but what MQTT.js holds. A PUBACK for a
 * drain id reaches MQTT.js too, which finds no PUBLISH of its own under it and ignores it
 * (handlers/ack.js: "Server sent an ack in error").
 *
 * Ids go round in order (as MQTT.js's default does), so an id comes back as late as possible: a late
 * answer to a dead link's packet is never taken for a new one's.
 */
const ID_COUNT = 65_536; // ids 1..65535; 0 is not a packet id

export class PacketIds {
  private readonly used = new Uint8Array(ID_COUNT);
  private next = 1;
  private last = 0;
  private inUse = 0;

  /** Ids held (by either side). */
  get count(): number {
    return this.inUse;
  }

  /** A free id, marked in use; null when all 65,535 are in use (MQTT.js then queues its packet). */
  allocate(): number | null {
    if (this.inUse >= ID_COUNT - 1) return null;
    let id = this.next;
    while (this.used[id] === 1) id = id === ID_COUNT - 1 ? 1 : id + 1;
    this.used[id] = 1;
    this.inUse++;
    this.last = id;
    this.next = id === ID_COUNT - 1 ? 1 : id + 1;
    return id;
  }

  getLastAllocated(): number | null {
    return this.last === 0 ? null : this.last;
  }

  /** Marks `id` in use (MQTT.js re-sending a stored packet); false when it already is. */
  register(id: number): boolean {
    if (this.used[id] === 1) return false;
    this.used[id] = 1;
    this.inUse++;
    return true;
  }

  deallocate(id: number): void {
    if (this.used[id] !== 1) return;
    this.used[id] = 0;
    this.inUse--;
  }

  clear(): void {
    this.used.fill(0);
    this.inUse = 0;
  }
}
