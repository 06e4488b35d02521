import type { App, Receiver } from "@slack/bolt";

/**
 * A Receiver the console and tests drive in-process: it hands Slack-shaped payloads to the Bolt app
 * exactly as the HTTP and Socket Mode receivers do, and resolves when every listener has finished.
 */
export class ConsoleReceiver implements Receiver {
  private app: App | undefined;

  init(app: App): void {
    this.app = app;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  /** Delivers one payload; returns what the listener passed to ack() (undefined for an empty ack). */
  async dispatch(body: Record<string, unknown>): Promise<{ acked: boolean; response: unknown }> {
    if (!this.app) throw new Error("the receiver is not attached to an app");
    let acked = false;
    let response: unknown;
    await this.app.processEvent({
      body,
      ack: async (r?: unknown) => {
        if (acked) throw new Error("ack() called twice");
        acked = true;
        response = r;
      },
    });
    return { acked, response };
  }
}
