// pino's built-in redaction (@pinojs/redact) walks every wildcard path on every line: with the
// default paths that costs about 35 µs a line against 1.5 µs without. This redactor works on the
// finished JSON line instead, after serializers and child bindings, and leaves a line untouched
// unless it contains a key that ends one of the paths.

const SEGMENT = /[^.[\]]+|\[([^[\]]*?)\]/g;

/** Splits a pino-style path (`a.b`, `*.b`, `a["x-y"]`, `a[0]`) into keys; `*` matches any key. */
function parsePath(path: string): string[] {
  return Array.from(path.matchAll(SEGMENT), ([segment, bracketed]) =>
    bracketed === undefined ? segment : bracketed.replace(/^(["'`])(.*)\1$/, '$2'),
  );
}

/** The paths merged into one tree, so one walk over a line's JSON applies all of them. */
interface PathTree {
  end: boolean;
  next: Map<string, PathTree>;
}

function buildTree(paths: string[][]): PathTree {
  const root: PathTree = { end: false, next: new Map() };
  for (const path of paths) {
    let node = root;
    for (const key of path) {
      let child = node.next.get(key);
      if (!child) node.next.set(key, (child = { end: false, next: new Map() }));
      node = child;
    }
    node.end = true;
  }
  return root;
}

function redactNode(node: unknown, trees: PathTree[], censor: string): void {
  if (node === null || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const matches: PathTree[] = [];
    for (const tree of trees) {
      const exact = tree.next.get(key);
      const any = tree.next.get('*');
      if (exact) matches.push(exact);
      if (any && any !== exact) matches.push(any);
    }
    if (matches.some((match) => match.end)) record[key] = censor;
    else if (matches.length > 0) redactNode(record[key], matches, censor);
  }
}

export function createLineRedactor(paths: string[], censor: string): (line: string) => string {
  const parsed = paths.map(parsePath);
  // An array index never appears in the JSON text, so the filter looks for the last named key.
  const lastKeys = parsed.map((path) => path.findLast((key) => key !== '*' && !/^\d+$/.test(key)));
  const mayContainSecret = lastKeys.includes(undefined)
    ? () => true
    : RegExp.prototype.test.bind(
        new RegExp(`(?:${[...new Set(lastKeys)].map((key) => JSON.stringify(key).replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')).join('|')}):`),
      );
  const tree = buildTree(parsed);
  return (line) => {
    if (!mayContainSecret(line)) return line;
    const entry: unknown = JSON.parse(line);
    redactNode(entry, [tree], censor);
    return `${JSON.stringify(entry)}\n`;
  };
}
