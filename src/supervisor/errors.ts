export type SwitchKind = 'upgrade' | 'rollback' | 'restart';

/** A release switch that did not happen; `code` lets scripts tell the reasons apart. */
export class SwitchError extends Error {
  constructor(
    readonly code: 'busy' | 'missing' | 'wrong-app' | 'migration' | 'crashed' | 'ready-timeout' | 'failed',
    message: string,
  ) {
    super(message);
    this.name = 'SwitchError';
  }
}
