// The workflow's YAML is the source of truth: the graph is read from it, and every edit in the
// builder is a change to the YAML document (comments and the untouched parts keep their form).
import { parseDocument } from "yaml";

const PRINT = { flowCollectionPadding: false, lineWidth: 0 };
const REF = /steps\.([A-Za-z_][A-Za-z0-9_]*)/g;

/** The steps of `text` ({} when the YAML does not parse), and the parse error if any. */
export function readSteps(text) {
  const doc = parseDocument(text);
  if (doc.errors.length) return { steps: {}, error: doc.errors[0].message };
  const js = doc.toJS() ?? {};
  const steps = js.steps && typeof js.steps === "object" && !Array.isArray(js.steps) ? js.steps : {};
  return { steps, error: null };
}

function mentions(step) {
  const found = new Set();
  const text = JSON.stringify({ p: step.prompt, s: step.system, m: step.map, w: step.with });
  for (const match of text.matchAll(REF)) found.add(match[1]);
  for (const name of Array.isArray(step.after) ? step.after : []) found.add(name);
  return found;
}

/** One edge per step another step's templates (or `after`) refer to. */
export function edgesOf(steps) {
  const edges = [];
  for (const [name, step] of Object.entries(steps)) {
    for (const source of mentions(step ?? {})) {
      if (source in steps && source !== name) edges.push({ id: `${source}->${name}`, source, target: name });
    }
  }
  return edges;
}

/** A position for each step: columns by depth in the DAG, rows in order. */
export function layout(steps) {
  const depth = {};
  const visit = (name, seen = new Set()) => {
    if (name in depth) return depth[name];
    if (seen.has(name)) return 0;
    seen.add(name);
    const parents = [...mentions(steps[name] ?? {})].filter((p) => p in steps && p !== name);
    depth[name] = parents.length ? Math.max(...parents.map((p) => visit(p, seen))) + 1 : 0;
    return depth[name];
  };
  const rows = {};
  const positions = {};
  for (const name of Object.keys(steps)) {
    const column = visit(name);
    rows[column] = (rows[column] ?? 0) + 1;
    positions[name] = { x: 40 + column * 280, y: 30 + (rows[column] - 1) * 150 };
  }
  return positions;
}

/** `text` changed by `change(doc)`. */
export function edit(text, change) {
  const doc = parseDocument(text);
  change(doc);
  return doc.toString(PRINT);
}

const NEW_STEP = {
  model: (model) => ({ model, prompt: "{{ inputs.text }}", params: { max_tokens: 64 } }),
  tool: () => ({ tool: "format_json", with: { value: "{{ inputs.text }}" } }),
  map: (model) => ({ model, map: "{{ inputs.items }}", prompt: "{{ item }}", params: { max_tokens: 64 } }),
};

/** Add a new step of `kind` ("model", "tool" or "map"); returns [text, its name]. */
export function addStep(text, kind, model) {
  const { steps } = readSteps(text);
  let n = 1;
  while (`step${n}` in steps) n += 1;
  const name = `step${n}`;
  const next = edit(text, (doc) => {
    const node = doc.get("steps");
    if (!node || !node.items?.length) {
      const map = doc.createNode({});
      map.flow = false;
      doc.set("steps", map);
    }
    doc.setIn(["steps", name], doc.createNode(NEW_STEP[kind](model)));
  });
  return [next, name];
}

/** Make `target` use `source`'s output: its prompt names it, or (without a prompt) it waits for it. */
export function connect(text, source, target) {
  const { steps } = readSteps(text);
  const step = steps[target];
  if (!step || source === target || mentions(step).has(source)) return text;
  return edit(text, (doc) => {
    if (typeof step.prompt === "string") {
      doc.setIn(["steps", target, "prompt"], `${step.prompt}\n\n{{ steps.${source} }}`);
    } else {
      doc.setIn(["steps", target, "after"], doc.createNode([...(step.after ?? []), source]));
    }
  });
}

/** Set (or, with "" / null, remove) one field of a step; `path` is below the step. */
export function setField(text, name, path, value) {
  return edit(text, (doc) => {
    const at = ["steps", name, ...path];
    if (value === "" || value == null) {
      if (doc.hasIn(at)) doc.deleteIn(at);
      return;
    }
    doc.setIn(at, value);
  });
}

export function removeStep(text, name) {
  return edit(text, (doc) => doc.deleteIn(["steps", name]));
}

/** Step name -> the validation problems the server reported for it (its 400 message). */
export function problemsByStep(message) {
  const found = {};
  for (const line of (message ?? "").split("\n")) {
    const match = line.match(/step `([^`]+)`: (.*)$/);
    if (match) (found[match[1]] ??= []).push(match[2]);
  }
  return found;
}
