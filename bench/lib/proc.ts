import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM, ...); undefined once the process is gone. */
export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

export const mb = (kb: number | undefined): number | undefined => (kb === undefined ? undefined : kb / 1024);

interface Stat {
  ppid: number;
  cpuSeconds: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15, and cutime 16, cstime 17:
    // what its exited children used, so that a PostgreSQL backend ending mid-run still counts.
    const ticks = Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
    return { ppid: Number(rest[1]), cpuSeconds: ticks / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/** A process and all its descendants (PostgreSQL forks one backend per connection). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0 && tree.length < 10_000) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/**
 * CPU seconds (user + system) used so far by a group of processes and their
 * reaped children. Summed over a whole live tree this counts nothing twice: a
 * child's time moves into its parent's cutime only once the child is gone.
 */
export function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (readStat(pid)?.cpuSeconds ?? 0), 0);
}

/** CPU seconds the whole machine has spent busy (every state but idle and iowait), from /proc/stat. */
export function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const busy = fields.slice(0, 8).reduce((sum, v, i) => (i === 3 || i === 4 ? sum : sum + v), 0);
  return busy / CLOCK_TICKS;
}

export const OTHERS = 'other processes on the machine (kernel, other work)';

/** Measures the CPU each named group of processes uses between start() and stop(), in % of one core. */
export class CpuMeter {
  private before = new Map<string, number>();
  private machineBefore = 0;
  private started = 0;

  /** `groups` is re-evaluated at stop() so that processes forked meanwhile (new PostgreSQL backends) count. */
  constructor(private readonly groups: () => Map<string, number[]>) {}

  start(): void {
    this.started = performance.now();
    this.before = new Map([...this.groups()].map(([name, pids]) => [name, cpuSeconds(pids)]));
    this.machineBefore = machineBusySeconds();
  }

  /** % of one core per group, plus OTHERS: what every other process on the machine used meanwhile. */
  stop(): Map<string, number> {
    const elapsed = (performance.now() - this.started) / 1000;
    const machine = ((machineBusySeconds() - this.machineBefore) / elapsed) * 100;
    const result = new Map<string, number>();
    let ours = 0;
    for (const [name, pids] of this.groups()) {
      const pct = ((cpuSeconds(pids) - (this.before.get(name) ?? 0)) / elapsed) * 100;
      result.set(name, pct);
      ours += pct;
    }
    result.set(OTHERS, Math.max(0, machine - ours));
    return result;
  }
}
