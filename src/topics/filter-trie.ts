/**
 * Topic filters indexed by level, so matching a topic costs its depth rather than the number of
 * filters: 10,000 sleeping devices with a filter each do not make every broker message scan 10,000.
 */
interface Node {
  children: Map<string, Node>;
  /** The '+' child. */
  plus: Node | undefined;
  /** A filter ending in '#' here (matches this level and everything below). */
  hash: string | undefined;
  /** A filter ending exactly here. */
  filter: string | undefined;
}

const newNode = (): Node => ({ children: new Map(), plus: undefined, hash: undefined, filter: undefined });

export class FilterTrie {
  private readonly root = newNode();

  add(filter: string): void {
    let node = this.root;
    for (const level of filter.split('/')) {
      if (level === '#') {
        node.hash = filter;
        return;
      }
      if (level === '+') node = node.plus ??= newNode();
      else {
        let child = node.children.get(level);
        if (!child) node.children.set(level, (child = newNode()));
        node = child;
      }
    }
    node.filter = filter;
  }

  remove(filter: string): void {
    this.removeFrom(this.root, filter.split('/'), 0, filter);
  }

  /** Calls `visit` once for every filter matching `topic` (MQTT rules: wildcards skip $-topics at the root). */
  match(topic: string, visit: (filter: string) => void): void {
    const levels = topic.split('/');
    const dollar = topic.charCodeAt(0) === 0x24;
    const walk = (node: Node, i: number): void => {
      if (node.hash !== undefined && !(dollar && i === 0)) visit(node.hash);
      if (i === levels.length) {
        if (node.filter !== undefined) visit(node.filter);
        return;
      }
      const child = node.children.get(levels[i]!);
      if (child) walk(child, i + 1);
      if (node.plus && !(dollar && i === 0)) walk(node.plus, i + 1);
    };
    walk(this.root, 0);
  }

  /** Removes the filter; prunes nodes left empty. Returns whether `node` is now empty. */
  private removeFrom(node: Node, levels: string[], i: number, filter: string): boolean {
    const level = levels[i];
    if (level === '#') {
      if (node.hash === filter) node.hash = undefined;
    } else if (level === undefined) {
      if (node.filter === filter) node.filter = undefined;
    } else if (level === '+') {
      if (node.plus && this.removeFrom(node.plus, levels, i + 1, filter)) node.plus = undefined;
    } else {
      const child = node.children.get(level);
      if (child && this.removeFrom(child, levels, i + 1, filter)) node.children.delete(level);
    }
    return node.children.size === 0 && !node.plus && node.hash === undefined && node.filter === undefined;
  }
}
