export * from './runtime/index.ts';
export type * from './protocol.ts';
