/**
 * Runs the vitest suites on Deno: deno.json maps the bare specifier "vitest" here. `expect` is vitest's
 * own (`@vitest/expect` on chai), so assertions behave identically; `describe`/`it` and the hooks are
 * mapped onto `Deno.test`, one Deno test per `it`, named "describe > it".
 */
import { chai, getState, JestAsymmetricMatchers, JestChaiExpect, JestExtend, setState } from "@vitest/expect";

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);

// deno-lint-ignore no-explicit-any
type Any = any;
type Hook = () => unknown | Promise<unknown>;
type TestFn = () => unknown | Promise<unknown>;

const expectImpl: Any = (value: unknown, message?: string) => {
  setState({ assertionCalls: getState(expectImpl).assertionCalls + 1 }, expectImpl);
  return chai.expect(value, message);
};
Object.assign(expectImpl, chai.expect);
setState({ assertionCalls: 0, isExpectingAssertions: false, expectedAssertionsNumber: null }, expectImpl);
export const expect = expectImpl;

interface Suite {
  name: string;
  parent?: Suite;
  beforeAll: Hook[];
  afterAll: Hook[];
  beforeEach: Hook[];
  afterEach: Hook[];
  tests: number;
  finished: number;
  started: boolean;
  skipped: boolean;
}

const root: Suite = newSuite("", undefined, false);
let current: Suite = root;

function newSuite(name: string, parent: Suite | undefined, skipped: boolean): Suite {
  return { name, parent, beforeAll: [], afterAll: [], beforeEach: [], afterEach: [], tests: 0, finished: 0, started: false, skipped };
}

function chain(suite: Suite): Suite[] {
  const list: Suite[] = [];
  for (let s: Suite | undefined = suite; s; s = s.parent) list.unshift(s);
  return list;
}

function fullName(suite: Suite, name: string): string {
  return [...chain(suite).map((s) => s.name).filter(Boolean), name].join(" > ");
}

function registerDescribe(name: string, body: () => void, skipped: boolean): void {
  const suite = newSuite(name, current, skipped || current.skipped);
  const previous = current;
  current = suite;
  try {
    body();
  } finally {
    current = previous;
  }
}

function registerTest(name: string, fn: TestFn | undefined, skipped: boolean, timeoutMs?: number): void {
  const suite = current;
  const suites = chain(suite);
  const ignore = skipped || suite.skipped || !fn;
  if (!ignore) for (const s of suites) s.tests++;
  Deno.test({
    name: fullName(suite, name),
    ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    sanitizeExit: false,
    async fn() {
      for (const s of suites) {
        if (!s.started) {
          s.started = true;
          for (const hook of s.beforeAll) await hook();
        }
      }
      let failure: unknown;
      try {
        for (const s of suites) for (const hook of s.beforeEach) await hook();
        await withTimeout(fn!, timeoutMs ?? 60_000, name);
      } catch (error) {
        failure = error;
      }
      for (const s of [...suites].reverse()) {
        for (const hook of s.afterEach) {
          try {
            await hook();
          } catch (error) {
            failure ??= error;
          }
        }
      }
      for (const s of [...suites].reverse()) {
        s.finished++;
        if (s.finished === s.tests) {
          for (const hook of s.afterAll) {
            try {
              await hook();
            } catch (error) {
              failure ??= error;
            }
          }
        }
      }
      if (failure !== undefined) throw failure;
    },
  });
}

async function withTimeout(fn: TestFn, ms: number, name: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Test "${name}" timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

type DescribeFn = ((name: string, body: () => void) => void) & {
  skip(name: string, body: () => void): void;
  skipIf(condition: unknown): (name: string, body: () => void) => void;
  runIf(condition: unknown): (name: string, body: () => void) => void;
  each<T>(cases: readonly T[]): (name: string, body: (item: T) => void) => void;
};
type ItFn = ((name: string, fn?: TestFn, timeoutMs?: number) => void) & {
  skip(name: string, fn?: TestFn): void;
  skipIf(condition: unknown): (name: string, fn?: TestFn, timeoutMs?: number) => void;
  runIf(condition: unknown): (name: string, fn?: TestFn, timeoutMs?: number) => void;
  each<T>(cases: readonly T[]): (name: string, fn: (item: T) => unknown, timeoutMs?: number) => void;
};

function format(name: string, item: unknown, index: number): string {
  return name
    .replace(/%i/g, String(index))
    .replace(/%[sdj]/, () => (typeof item === "string" ? item : JSON.stringify(item)))
    .replace(/\$(\w+)/g, (_, key: string) => String((item as Record<string, unknown>)?.[key]));
}

export const describe: DescribeFn = Object.assign((name: string, body: () => void) => registerDescribe(name, body, false), {
  skip: (name: string, body: () => void) => registerDescribe(name, body, true),
  skipIf: (condition: unknown) => (name: string, body: () => void) => registerDescribe(name, body, Boolean(condition)),
  runIf: (condition: unknown) => (name: string, body: () => void) => registerDescribe(name, body, !condition),
  each: <T>(cases: readonly T[]) => (name: string, body: (item: T) => void) =>
    cases.forEach((item, index) => registerDescribe(format(name, item, index), () => body(item), false)),
});

export const it: ItFn = Object.assign(
  (name: string, fn?: TestFn, timeoutMs?: number) => registerTest(name, fn, false, timeoutMs),
  {
    skip: (name: string, fn?: TestFn) => registerTest(name, fn, true),
    skipIf: (condition: unknown) => (name: string, fn?: TestFn, timeoutMs?: number) =>
      registerTest(name, fn, Boolean(condition), timeoutMs),
    runIf: (condition: unknown) => (name: string, fn?: TestFn, timeoutMs?: number) =>
      registerTest(name, fn, !condition, timeoutMs),
    each: <T>(cases: readonly T[]) => (name: string, fn: (item: T) => unknown, timeoutMs?: number) =>
      cases.forEach((item, index) => registerTest(format(name, item, index), () => fn(item), false, timeoutMs)),
  },
);
export const test: ItFn = it;

export function beforeAll(hook: Hook): void {
  current.beforeAll.push(hook);
}
export function afterAll(hook: Hook): void {
  current.afterAll.push(hook);
}
export function beforeEach(hook: Hook): void {
  current.beforeEach.push(hook);
}
export function afterEach(hook: Hook): void {
  current.afterEach.push(hook);
}
