/**
 * prom-client metrics whose values are copied at scrape time from plain numbers the bridge keeps
 * anyway (GatewayStats, OutboxStats, UplinkStats). Nothing is counted twice and the hot paths never
 * call into prom-client (the one exception, the PUBACK latency histogram, is observed in metrics.ts).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export class Mirror<S> {
  constructor(
    private readonly registry: Registry,
    /** The snapshot taken for the scrape under way. */
    private readonly current: () => S,
  ) {}

  /** A counter equal to `read(snapshot)`; `read` must never go down within a process. */
  counter(name: string, help: string, read: (s: S) => number): void {
    const current = this.current;
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(read(current()));
      },
    });
  }

  /** One counter series per key of `read(snapshot)`, under label `label`. */
  labeledCounter(name: string, help: string, label: string, read: (s: S) => Record<string, number>): void {
    const current = this.current;
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [value, count] of Object.entries(read(current()))) this.inc({ [label]: value }, count);
      },
    });
  }

  gauge(name: string, help: string, read: (s: S) => number, labels: Record<string, string> = {}): void {
    const current = this.current;
    new Gauge({
      name,
      help,
      labelNames: Object.keys(labels),
      registers: [this.registry],
      collect() {
        this.set(labels, read(current()));
      },
    });
  }

  /** One gauge series per key of `read(snapshot)`, under label `label`. */
  labeledGauge(name: string, help: string, label: string, read: (s: S) => Record<string, number>): void {
    const current = this.current;
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [value, n] of Object.entries(read(current()))) this.set({ [label]: value }, n);
      },
    });
  }
}
