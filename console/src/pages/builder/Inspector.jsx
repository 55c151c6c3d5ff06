import { setField } from "./graph.js";

const TOOLS = ["extract_text", "chunk", "embed", "retrieve", "format_json"];

function number(value) {
  return value === "" ? null : Number(value);
}

/** Edits one step; every change is written into the YAML at once. */
export default function Inspector({ name, step, text, setText, models, onRemove }) {
  if (!step) return <p className="hint">Select a step to edit it, or drag one from the palette.</p>;
  const change = (path, value) => setText(setField(text, name, path, value));
  const params = step.params ?? {};
  return (
    <form className="inspector" aria-label={`Inspector of ${name}`} onSubmit={(e) => e.preventDefault()}>
      <h3>
        Step <code>{name}</code>
      </h3>
      {step.tool ? (
        <label>
          Tool
          <select aria-label="Tool" value={step.tool} onChange={(e) => change(["tool"], e.target.value)}>
            {TOOLS.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
      ) : (
        <>
          <label>
            Step model
            <select aria-label="Step model" value={step.model ?? ""} onChange={(e) => change(["model"], e.target.value)}>
              {[...new Set([step.model, ...models].filter(Boolean))].map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </label>
          <label>
            Step system prompt
            <textarea rows={2} value={step.system ?? ""} onChange={(e) => change(["system"], e.target.value)} />
          </label>
          <label>
            Prompt template
            <textarea rows={4} value={step.prompt ?? ""} onChange={(e) => change(["prompt"], e.target.value)} />
          </label>
          <label>
            Step max tokens
            <input
              type="number"
              min="1"
              value={params.max_tokens ?? ""}
              onChange={(e) => change(["params", "max_tokens"], number(e.target.value))}
            />
          </label>
          <label>
            Step temperature
            <input
              type="number"
              min="0"
              max="2"
              step="0.1"
              value={params.temperature ?? ""}
              onChange={(e) => change(["params", "temperature"], number(e.target.value))}
            />
          </label>
        </>
      )}
      <label>
        Map over (an expression yielding a list; empty: run once)
        <input value={step.map ?? ""} onChange={(e) => change(["map"], e.target.value)} />
      </label>
      <button type="button" onClick={onRemove}>
        Delete step
      </button>
    </form>
  );
}
