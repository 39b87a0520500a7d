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

/** The label value (route, subject) whose histogram gained the most observations between two scrapes. */
export function busiest(before: Samples, after: Samples, name: string, label: string, filter: Record<string, string>): string | undefined {
  const counts = (samples: Samples) => {
    const map = new Map<string, number>();
    for (const s of samples) {
      if (s.name !== `${name}_count` || !Object.entries(filter).every(([k, v]) => s.labels[k] === v)) continue;
      const key = s.labels[label] ?? '';
      map.set(key, (map.get(key) ?? 0) + s.value);
    }
    return map;
  };
  const a = counts(before);
  let best: string | undefined;
  let bestDelta = 0;
  for (const [key, value] of counts(after)) {
    const delta = value - (a.get(key) ?? 0);
    if (delta > bestDelta) [best, bestDelta] = [key, delta];
  }
  return best;
}

/** A scrape that never fails the run: without /metrics the tables show n/a. */
export async function scrapeOrNothing(url: string, onError: (message: string) => void): Promise<Samples> {
  return scrape(url).catch((error: Error) => {
    onError(`could not read ${url}: ${error.message}`);
    return [];
  });
}
