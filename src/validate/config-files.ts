/**
 * Which files of a group folder are served, and with which content type (DESIGN §1).
 *
 * - `config.files` lists them; a listed file that is not in the folder is an error
 *   (CONFIG_FILE_MISSING), and so is a listed file whose extension has no content type
 *   (CONFIG_FILE_TYPE): it was asked for but cannot be served correctly.
 * - Without `config.files`, every other file of the folder is served, sorted by name, except
 *   hidden files (`.gitkeep`, `.DS_Store`), which are skipped silently, and files of other
 *   types (a README.md), which are skipped with a warning (CONFIG_FILE_IGNORED).
 * - A group with no config file is an error (GROUP_NO_CONFIG_FILES): an empty config would
 *   stop a Collector.
 * - A .json file must be JSON, not just YAML (CONFIG_FILE_NOT_JSON): it is served as
 *   application/json.
 */
import { finding, START } from "./findings.js";
import type { Finding } from "./model.js";
import type { LoadedYaml } from "./yaml.js";

const CONTENT_TYPES: Record<string, string> = {
  ".yaml": "text/yaml",
  ".yml": "text/yaml",
  ".json": "application/json",
};

/** The content type of a config file name, or undefined for an unsupported extension. */
export function contentTypeOf(name: string): string | undefined {
  const dot = name.lastIndexOf(".");
  return dot <= 0 ? undefined : CONTENT_TYPES[name.slice(dot).toLowerCase()];
}

export interface SelectedFile {
  name: string;
  contentType: string;
  body: Uint8Array;
}

/**
 * The served files of a group. `listed` is group.yaml's config.files (undefined for the
 * default); `groupDoc` locates findings about the list; `dir` is "groups/<name>".
 */
export function selectConfigFiles(
  dir: string,
  files: ReadonlyMap<string, Uint8Array>,
  listed: readonly string[] | undefined,
  groupDoc: LoadedYaml,
): { files: SelectedFile[]; findings: Finding[] } {
  const findings: Finding[] = [];
  const out: SelectedFile[] = [];
  if (listed) {
    listed.forEach((name, i) => {
      const at = groupDoc.locate(["config", "files", i]);
      const body = files.get(name);
      const contentType = contentTypeOf(name);
      if (!body) {
        const present = [...files.keys()].sort();
        findings.push(
          finding(
            groupDoc.file,
            at,
            "error",
            "CONFIG_FILE_MISSING",
            `config.files lists "${name}", which is not in ${dir}/${present.length ? ` (it holds ${present.join(", ")})` : ""}: add the file or fix the name`,
            { name },
          ),
        );
      } else if (!contentType) {
        findings.push(
          finding(
            groupDoc.file,
            at,
            "error",
            "CONFIG_FILE_TYPE",
            `config.files lists "${name}", which is not a .yaml, .yml or .json file: only those can be served`,
            {
              name,
            },
          ),
        );
      } else {
        out.push({ name, contentType, body });
      }
    });
  } else {
    for (const name of [...files.keys()].sort()) {
      if (name.startsWith(".")) continue;
      const contentType = contentTypeOf(name);
      if (!contentType) {
        findings.push(
          finding(
            `${dir}/${name}`,
            START,
            "warning",
            "CONFIG_FILE_IGNORED",
            `${name} is not served: only .yaml, .yml and .json files are config files (move it out of the group folder, or list the served files in config.files)`,
            { name },
          ),
        );
        continue;
      }
      out.push({ name, contentType, body: files.get(name) as Uint8Array });
    }
  }
  if (out.length === 0 && findings.every((f) => f.code !== "CONFIG_FILE_MISSING"))
    findings.push(
      finding(
        groupDoc.file,
        listed ? groupDoc.locate(["config", "files"]) : START,
        "error",
        "GROUP_NO_CONFIG_FILES",
        `${dir} has no config file to serve: add the agent configuration (e.g. collector.yaml) next to group.yaml`,
      ),
    );
  return { files: out, findings };
}

/**
 * Why a .json file's bytes are not JSON (the agent is told application/json), with the
 * character offset when the parser gives one; undefined when they are JSON.
 */
export function jsonProblem(body: Uint8Array): { message: string; offset?: number } | undefined {
  try {
    JSON.parse(new TextDecoder().decode(body));
    return undefined;
  } catch (err) {
    const message = (err as Error).message;
    const m = /position (\d+)/.exec(message);
    return m ? { message, offset: Number(m[1]) } : { message };
  }
}
