/**
 * Validation of the service settings (DESIGN §6) against schemas/settings.schema.json, with
 * the same ajv setup as everything else. Keys are the flag names in camelCase (opampListen,
 * redis, pollInterval, ...); each problem names the setting.
 */
import type { ErrorObject } from "ajv";
import { didYouMean } from "./did-you-mean.js";
import { builtinErrors } from "./schemas.js";

export interface SettingsProblem {
  /** The setting's key, e.g. "opampListen" (the flag --opamp-listen). */
  setting: string;
  /** What is wrong and what is expected, naming the setting. */
  message: string;
}

function hint(e: ErrorObject): string {
  const h = (e.parentSchema as Record<string, unknown> | undefined)?.["x-hint"];
  return typeof h === "string" ? h : (e.message ?? "a valid value").replace(/^must (be )?/, "");
}

/** Problems of a settings object (empty when valid). */
export function validateSettings(settings: unknown): SettingsProblem[] {
  const errors = builtinErrors("settings", settings);
  const unions = errors.filter((e) => e.keyword === "anyOf");
  const problems: SettingsProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (
      unions.some(
        (u) =>
          u !== e &&
          u.instancePath === e.instancePath &&
          e.schemaPath.startsWith(`${u.schemaPath}/`),
      )
    )
      continue;
    const p = e.params as Record<string, unknown>;
    let problem: SettingsProblem;
    const setting = e.instancePath.split("/")[1] ?? "";
    if (e.keyword === "additionalProperties") {
      const key = String(p.additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
      const meant = didYouMean(key, known);
      problem = {
        setting: key,
        message: `unknown setting "${key}"${meant ? `; did you mean "${meant}"?` : ""}`,
      };
    } else if (e.keyword === "dependentRequired") {
      problem = {
        setting: String(p.property),
        message: `setting ${String(p.property)} needs ${String(p.missingProperty)} as well`,
      };
    } else if (e.keyword === "type" && setting === "") {
      problem = { setting: "", message: "settings must be a mapping of setting names to values" };
    } else {
      const value = (settings as Record<string, unknown>)[setting];
      problem = {
        setting,
        message: `setting ${setting} is ${JSON.stringify(value)}; expected ${hint(e)}`,
      };
    }
    const key = `${problem.setting}:${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  }
  // A port number must be a port.
  for (const key of ["opampListen", "apiListen"]) {
    const v = (settings as Record<string, unknown> | null)?.[key];
    if (typeof v === "string" && problems.every((x) => x.setting !== key)) {
      const port = Number(v.slice(v.lastIndexOf(":") + 1));
      if (port > 65535)
        problems.push({
          setting: key,
          message: `setting ${key} is "${v}"; the port must be at most 65535`,
        });
    }
  }
  return problems;
}
