// sd_notify: tell systemd when we are ready, reloading, stopping, and that we are alive.
// Only active when systemd gave us NOTIFY_SOCKET; a no-op otherwise.
export interface Notifier {
  notify(state: string): void;
  close(): void;
}

export function createNotifier(): Notifier | undefined {
  return undefined;
}
