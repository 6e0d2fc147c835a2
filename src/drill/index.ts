// slipway/drill: load generator, scenarios, SLO verdicts, HTML report.
export { startLoad, parseMix, DEFAULT_MIX, assertLoopback, type LoadOptions, type LoadResult, type RunningLoad, type Route } from './loadgen.ts';
export { windows, summarize, switches, recovery, WINDOW_MS, type Window, type Summary, type Switch } from './analyze.ts';
export { parseSlo, resolveSlos, holds, DEFAULT_SLOS, METRICS, SloError, type Threshold } from './slo.ts';
export { runDrill, verdictTable, SCENARIOS, DrillError, type DrillOptions, type DrillReport, type EventSpec, type Verdict } from './run.ts';
export { renderHtml, writeReport, prepareReportDir, chartSpecs } from './report.ts';
export { Target } from './target.ts';
