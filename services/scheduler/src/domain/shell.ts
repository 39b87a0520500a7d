import { BusError } from '@runnerhub/bus';

/**
 * Splits an argument string into words the way sh would, without any
 * expansion: single quotes, double quotes (with \\ \" \$ \` escapes) and
 * backslashes group and escape; nothing else is special.
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw BusError.validation('args has an unterminated single quote', 'args');
      word += text.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '\\"$`'.includes(text[j + 1]!)) j++;
        word += text[j];
      }
      if (j >= text.length) throw BusError.validation('args has an unterminated double quote', 'args');
      inWord = true;
      i = j;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** One word quoted for sh: it reaches the program exactly as given. */
export function quoteForSh(word: string): string {
  if (/^[A-Za-z0-9_\-./=:,@%+]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The command as the client wrote it (not quoted: it may be a pipeline), then each argument quoted. */
export function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args.map(quoteForSh)].join(' ');
}
