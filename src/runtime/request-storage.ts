// Where the current request's context lives while its code runs, through awaits.
//
// On Node 20, AsyncLocalStorage turns on async_hooks for the whole process: every promise, every
// process.nextTick (about nine per HTTP request in Node's http and stream code), every timer and
// socket request then calls into JavaScript to copy the store, and await loses V8's fast path.
// Measured on the orders example's GET /hello that was one of the largest costs of the production
// hooks (bench/hooks.ts). The default here follows promise chains only, through V8's promise
// hooks (`v8.promiseHooks`): a promise remembers the context it was created in and its
// continuations run in it, which is exactly what `await` in a request handler needs, at three
// small calls per promise and nothing for ticks, timers or sockets.
//
// What it does not follow: callback APIs (setTimeout, EventEmitter listeners, callback-style
// drivers) started while serving a request run without the request's context unless wrapped with
// `bindRequest(fn)` (context.ts runs a request's own events in it when it has a body, and a Fastify
// route's onResponse hooks). `SLIPWAY_REQUEST_CONTEXT=async-hooks` uses AsyncLocalStorage instead (every
// kind of async work, at its cost), and `off` carries no context past the request's first tick.
import { AsyncLocalStorage } from 'node:async_hooks';
import { promiseHooks } from 'node:v8';

export interface ContextStorage<T> {
  getStore(): T | undefined;
  /** Run fn(...args) with `store` as the current context (and what it starts, as far as followed). */
  run<R, A extends unknown[]>(store: T, fn: (...args: A) => R, ...args: A): R;
  /** fn bound to the current context (for callback APIs). */
  bind<F extends (...args: never[]) => unknown>(fn: F): F;
}

/** SLIPWAY_REQUEST_CONTEXT's values, the default first. */
export const CONTEXT_MODES = ['promises', 'async-hooks', 'off'] as const;
export type ContextMode = (typeof CONTEXT_MODES)[number];

const CTX = Symbol('slipway.ctx');
type Tagged<T> = Promise<unknown> & { [CTX]?: T };

/** Follows promise chains only (see above). Hooks are installed on first use. */
export class PromiseContextStorage<T extends object> implements ContextStorage<T> {
  /** The current store. Public for the instrumentation's hot path (context.ts), which compares it. */
  current: T | undefined;
  private stack: Array<T | undefined> = [];
  private stopHooks: (() => void) | undefined;

  getStore(): T | undefined {
    return this.current;
  }

  /**
   * fn.apply(self, args) with `store` as the current context: run() for the instrumentation's hot
   * path (an emit per request event), without run()'s rest parameters and spread.
   */
  apply<R>(store: T, fn: (...a: never[]) => R, self: unknown, args: IArguments): R {
    if (this.stopHooks === undefined) this.install();
    const prev = this.current;
    this.current = store;
    try {
      return fn.apply(self, args as unknown as never[]);
    } finally {
      this.current = prev;
    }
  }

  /** Make `store` current and return the one before it (put it back with `current = prev`). */
  enter(store: T): T | undefined {
    if (this.stopHooks === undefined) this.install();
    const prev = this.current;
    this.current = store;
    return prev;
  }

  run<R, A extends unknown[]>(store: T, fn: (...args: A) => R, ...args: A): R {
    if (this.stopHooks === undefined) this.install();
    const prev = this.current;
    this.current = store;
    try {
      return fn(...args);
    } finally {
      this.current = prev;
    }
  }

  bind<F extends (...args: never[]) => unknown>(fn: F): F {
    const store = this.current;
    if (store === undefined) return fn;
    return ((...args: Parameters<F>) => this.run(store, fn as (...a: Parameters<F>) => ReturnType<F>, ...args)) as unknown as F;
  }

  private install(): void {
    // The same multi-tenant V8 hook API that async_hooks itself is built on.
    this.stopHooks = promiseHooks.createHook({
      init: (promise: Tagged<T>) => {
        if (this.current !== undefined) promise[CTX] = this.current;
      },
      before: (promise: Tagged<T>) => {
        this.stack.push(this.current);
        this.current = promise[CTX];
      },
      after: () => {
        this.current = this.stack.pop();
      },
    }) as () => void;
  }

  /** Remove the hooks (tests). */
  disable(): void {
    this.stopHooks?.();
    this.stopHooks = undefined;
    this.current = undefined;
    this.stack = [];
  }
}

/** AsyncLocalStorage: every kind of async work, at the cost described above on Node 20. */
export class AsyncHooksContextStorage<T> implements ContextStorage<T> {
  private readonly als = new AsyncLocalStorage<T>();
  getStore(): T | undefined {
    return this.als.getStore();
  }
  run<R, A extends unknown[]>(store: T, fn: (...args: A) => R, ...args: A): R {
    return this.als.run(store, fn, ...args);
  }
  bind<F extends (...args: never[]) => unknown>(fn: F): F {
    return AsyncLocalStorage.bind(fn);
  }
}
