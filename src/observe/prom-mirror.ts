/**
 * prom-client metrics whose values are copied at scrape time from plain numbers the bridge keeps
 * anyway (GatewayStats, OutboxStats, UplinkStats). Nothing is counted twice and the hot paths never
 * call into prom-client.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

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

  /** A histogram from per-bucket counts kept elsewhere (see BucketCountsHistogram). */
  histogram(name: string, help: string, upperBounds: readonly number[], read: (s: S) => BucketCounts): void {
    const current = this.current;
    new BucketCountsHistogram(name, help, this.registry, upperBounds, () => read(current()));
  }
}

export interface BucketCounts {
  /** Observations per bucket (not cumulative): one per upper bound, then the +Inf bucket. */
  perBucket: ArrayLike<number>;
  sum: number;
  count: number;
}

type HistogramData = Awaited<ReturnType<Histogram['get']>>;

/**
 * A real Prometheus histogram (_bucket, _sum, _count) exposing counts recorded elsewhere. prom-client
 * can only fill a histogram by observe() calls, so the export is overridden instead.
 */
class BucketCountsHistogram extends Histogram {
  constructor(
    private readonly metricName: string,
    private readonly metricHelp: string,
    registry: Registry,
    private readonly upperBounds: readonly number[],
    private readonly read: () => BucketCounts,
  ) {
    super({ name: metricName, help: metricHelp, buckets: [...upperBounds], registers: [registry] });
  }

  override async get(): Promise<HistogramData> {
    return this.export();
  }

  /** What the registry calls for the text format when a metric has it (prom-client 15). */
  async getForPromString(): Promise<HistogramData> {
    return this.export();
  }

  private export(): HistogramData {
    const { perBucket, sum, count } = this.read();
    const values: Array<{ metricName: string; labels: Record<string, string>; value: number }> = [];
    let cumulative = 0;
    this.upperBounds.forEach((bound, i) => {
      cumulative += perBucket[i] ?? 0;
      values.push({
        metricName: `${this.metricName}_bucket`,
        labels: { le: String(bound) },
        value: cumulative,
      });
    });
    values.push({ metricName: `${this.metricName}_bucket`, labels: { le: '+Inf' }, value: count });
    values.push({ metricName: `${this.metricName}_sum`, labels: {}, value: sum });
    values.push({ metricName: `${this.metricName}_count`, labels: {}, value: count });
    // prom-client's typings declare `type` as a numeric enum, but its registry prints the runtime string.
    return {
      name: this.metricName,
      help: this.metricHelp,
      type: 'histogram',
      aggregator: 'sum',
      values,
    } as unknown as HistogramData;
  }
}
