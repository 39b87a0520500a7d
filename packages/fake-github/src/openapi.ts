import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';

type Json = Record<string, any>;

const SPEC_ID = 'https://api.github.com/openapi.json';

// ajv-formats is CommonJS with an `exports.default`; under NodeNext its default import is the module object.
const addFormats = formatsPlugin as unknown as typeof formatsPlugin.default;

/**
 * GitHub's own REST description (@octokit/openapi): the fake answers with the
 * documented examples and checks every answer against the documented schema,
 * so a client that works against the fake reads real GitHub shapes.
 */
export class GithubDescription {
  private static loaded: GithubDescription | undefined;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly ajv: Ajv;

  private constructor(private readonly spec: Json) {
    // GitHub's description uses OpenAPI keywords and formats (int64, …) plain JSON Schema does not know.
    this.ajv = new Ajv({ strict: false, logger: false, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: SPEC_ID, paths: spec.paths, components: spec.components }, undefined, undefined, false);
  }

  /** Parsed once per process: the file is about 13 MB. */
  static load(): GithubDescription {
    if (!GithubDescription.loaded) {
      const path = createRequire(import.meta.url).resolve('@octokit/openapi/generated/api.github.com.json');
      GithubDescription.loaded = new GithubDescription(JSON.parse(readFileSync(path, 'utf8')));
    }
    return GithubDescription.loaded;
  }

  /** A fresh copy of the first documented example of an operation's JSON answer. */
  example(method: string, path: string, status = '200'): any {
    const content = this.jsonContent(method, path, status);
    const example = Object.values<Json>(content.examples ?? {})[0];
    const value = example ? this.resolve(example).value : content.example;
    if (value === undefined) throw new Error(`GitHub documents no example for ${method} ${path} ${status}`);
    return structuredClone(value);
  }

  /** Throws unless `body` matches the documented schema of the operation's answer. */
  check(method: string, path: string, status: string, body: unknown): void {
    const key = `${method} ${path} ${status}`;
    let validate = this.validators.get(key);
    if (!validate) {
      this.jsonContent(method, path, status);
      const pointer = ['paths', path, method.toLowerCase(), 'responses', status, 'content', 'application/json', 'schema'].map((part) => encodeURIComponent(escapePointer(part))).join('/');
      validate = this.ajv.compile({ $ref: `${SPEC_ID}#/${pointer}` });
      this.validators.set(key, validate);
    }
    if (!validate(body)) throw new Error(`fake GitHub answer to ${key} does not match GitHub's schema: ${this.ajv.errorsText(validate.errors)}`);
  }

  private jsonContent(method: string, path: string, status: string): Json {
    const response = this.spec.paths[path]?.[method.toLowerCase()]?.responses?.[status];
    const content = response && this.resolve(response).content?.['application/json'];
    if (!content) throw new Error(`GitHub documents no JSON answer for ${method} ${path} ${status}`);
    return content;
  }

  private resolve(node: Json): Json {
    if (typeof node.$ref !== 'string') return node;
    const target = node.$ref.replace(/^#\//, '').split('/').reduce<Json>((at, part) => at[unescapePointer(part)], this.spec);
    return this.resolve(target);
  }
}

function escapePointer(part: string): string {
  return part.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(part: string): string {
  return part.replace(/~1/g, '/').replace(/~0/g, '~');
}
