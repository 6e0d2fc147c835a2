// Process tree helpers re-exported for the benchmarks.
export { childPids as childPidsOf, descendants } from './cleanup.ts';
