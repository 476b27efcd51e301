/**
 * Follows an OpAMP server's agent events: every event that can change an agent's status file
 * (connected, disconnected, description, capabilities, health, effective config, remote
 * config status) marks the agent dirty. Listeners only queue the uid (no I/O, no rendering
 * in the server's message path: the marks of one turn go to Redis together, and the writer
 * renders at flush time; agent-recorder.ts). Returns the function that unsubscribes.
 */
import type { AgentEventName, AgentEvents } from "../opamp/index.js";
import type { AgentRecorder } from "./agent-recorder.js";

const EVENTS: AgentEventName[] = [
  "connected",
  "disconnected",
  "descriptionChanged",
  "capabilitiesChanged",
  "healthChanged",
  "effectiveConfigChanged",
  "remoteConfigStatusChanged",
  "scopesChanged",
  "packageStatusesChanged",
  "connectionSettingsStatusChanged",
  "offered",
];

export function attachAgentEvents(events: AgentEvents, recorder: AgentRecorder): () => void {
  const offs = EVENTS.map((name) =>
    events.on(name, (e) => {
      // Connected through another replica now: that replica records it.
      if ("elsewhere" in e && e.elsewhere) return;
      void recorder.record(e.agent);
    }),
  );
  return () => {
    for (const off of offs) off();
  };
}
