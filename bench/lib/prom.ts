/** Just enough of the Prometheus text format to read a histogram's _sum and _count. */
export type Samples = Array<{ name: string; labels: Record<string, string>; value: number }>;

export async function scrape(url: string): Promise<Samples> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const samples: Samples = [];
  for (const line of (await response.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum and count of a histogram, summed over the series whose labels match. */
export function histogram(samples: Samples, name: string, labels: Record<string, string>): { sum: number; count: number } {
  const matches = (s: Samples[number]) => Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  let sum = 0;
  let count = 0;
  for (const sample of samples) {
    if (sample.name === `${name}_sum` && matches(sample)) sum += sample.value;
    if (sample.name === `${name}_count` && matches(sample)) count += sample.value;
  }
  return { sum, count };
}

/** Mean in milliseconds of what a histogram observed between two scrapes; undefined without observations. */
export function meanMsBetween(before: Samples, after: Samples, name: string, labels: Record<string, string>): number | undefined {
  const a = histogram(before, name, labels);
  const b = histogram(after, name, labels);
  const count = b.count - a.count;
  return count > 0 ? ((b.sum - a.sum) / count) * 1000 : undefined;
}
