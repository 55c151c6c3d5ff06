import { useEffect, useState } from "react";
import { api, stream } from "../api.js";
import Builder from "./builder/Builder.jsx";
import { problemsByStep } from "./builder/graph.js";

// A new workflow: an input and no steps yet; drag steps into the builder. Without `outputs`, the
// outputs are the steps no other step waits for.
const TEMPLATE = `name: my-workflow
description: ""
inputs:
  text:
    type: string
steps: {}
`;

function RunView({ run }) {
  if (!run) return null;
  return (
    <section aria-label="Run" className="run">
      <h3>
        Run <code>{run.id ?? "…"}</code> — <span className="state">{run.status}</span>
      </h3>
      <div className="steps">
        {Object.entries(run.steps).map(([name, step]) => (
          <article key={name} className={`step ${step.status}`} aria-label={`Step ${name}`}>
            <header>
              <strong>{name}</strong> <span className="state">{step.status}</span>
              {step.duration_s != null && <small> {step.duration_s.toFixed(2)} s</small>}
            </header>
            <pre>{typeof step.output === "string" || step.output == null ? step.output ?? step.text ?? "" : JSON.stringify(step.output, null, 2)}</pre>
            {step.error && <p role="alert">{step.error}</p>}
          </article>
        ))}
      </div>
      {run.outputs && (
        <>
          <h4>Outputs</h4>
          <pre aria-label="Run outputs">{JSON.stringify(run.outputs, null, 2)}</pre>
        </>
      )}
      {run.error && <p role="alert">{run.error.message ?? JSON.stringify(run.error)}</p>}
    </section>
  );
}

export default function Workflows() {
  const [list, setList] = useState(null);
  const [selected, setSelected] = useState(null);
  const [text, setText] = useState("");
  const [inputs, setInputs] = useState({});
  const [run, setRun] = useState(null);
  const [runs, setRuns] = useState([]);
  const [message, setMessage] = useState(null);
  const [problems, setProblems] = useState({});
  const [models, setModels] = useState([]);

  useEffect(() => {
    api("/v1/models").then((l) => setModels(l.data.map((m) => m.id)), (e) => setMessage(e.message));
  }, []);

  const refresh = () => api("/v1/workflows").then((l) => setList(l.data), (e) => setMessage(e.message));
  useEffect(() => {
    refresh();
  }, []);

  const open = async (name) => {
    setRun(null);
    try {
      const wf = await api(`/v1/workflows/${encodeURIComponent(name)}`);
      setSelected(wf);
      setText(wf.definition);
      setProblems({});
      setInputs(Object.fromEntries(Object.entries(wf.inputs).map(([k, v]) => [k, v.default ?? ""])));
      setRuns((await api(`/v1/workflows/${encodeURIComponent(name)}/runs`)).data);
    } catch (e) {
      setMessage(e.message);
    }
  };

  const save = async () => {
    setMessage(null);
    try {
      const name = selected?.name;
      const wf = name
        ? await api(`/v1/workflows/${encodeURIComponent(name)}`, { method: "PUT", yaml: text })
        : await api("/v1/workflows", { method: "POST", yaml: text });
      setMessage(`Saved ${wf.name}.`);
      setProblems({});
      await refresh();
      await open(wf.name);
    } catch (e) {
      setMessage(e.message);
      setProblems(problemsByStep(e.message));
    }
  };

  const remove = async () => {
    if (!selected) return;
    try {
      await api(`/v1/workflows/${encodeURIComponent(selected.name)}`, { method: "DELETE" });
      setSelected(null);
      setText("");
      setMessage(`Deleted ${selected.name}.`);
      refresh();
    } catch (e) {
      setMessage(e.message);
    }
  };

  const start = async (e) => {
    e.preventDefault();
    setMessage(null);
    const name = selected.name;
    let view = { status: "running", steps: Object.fromEntries(selected.steps.map((s) => [s, { status: "pending", text: "" }])) };
    setRun(view);
    try {
      for await (const event of stream(`/v1/workflows/${encodeURIComponent(name)}/runs`, { inputs, stream: true })) {
        const steps = { ...view.steps };
        const step = event.step ? { ...steps[event.step] } : null;
        if (event.type === "step.started") step.status = "running";
        if (event.type === "step.delta") step.text = (step.text ?? "") + (event.text ?? "");
        if (event.type === "step.finished") Object.assign(step, { status: "succeeded", output: event.output, duration_s: event.duration_s });
        if (event.type === "step.failed") Object.assign(step, { status: "failed", error: event.error });
        if (step) steps[event.step] = step;
        view = event.run ? { ...event.run } : { ...view, id: event.run_id, steps };
        setRun(view);
      }
      setRuns((await api(`/v1/workflows/${encodeURIComponent(name)}/runs`)).data);
    } catch (err) {
      setMessage(err.message);
    }
  };

  return (
    <div className="workflows">
      <aside aria-label="Workflow list">
        <ul className="plain">
          {list?.map((w) => (
            <li key={w.name}>
              <button type="button" className="link" aria-label={`Open workflow ${w.name}`} onClick={() => {
                  setMessage(null);
                  open(w.name);
                }}>
                {w.name}
              </button>
              {w.error && <small role="alert"> {w.error}</small>}
            </li>
          ))}
        </ul>
        {list && !list.length && <p>No workflows yet.</p>}
        <button
          type="button"
          onClick={() => {
            setSelected(null);
            setText(TEMPLATE);
            setProblems({});
            setMessage(null);
            setRun(null);
            setRuns([]);
          }}
        >
          New workflow
        </button>
      </aside>
      <section aria-label="Workflow editor">
        {message && <p role="status">{message}</p>}
        {(selected || text) && (
          <>
            <h2>{selected ? selected.name : "New workflow"}</h2>
            {selected?.description && <p>{selected.description}</p>}
            <Builder
              text={text}
              setText={setText}
              models={models}
              problems={problems}
              statuses={run ? Object.fromEntries(Object.entries(run.steps).map(([k, v]) => [k, v.status])) : undefined}
            />
            <label>
              Definition (YAML)
              <textarea className="code" rows={18} value={text} spellCheck={false} onChange={(e) => setText(e.target.value)} />
            </label>
            <div className="buttons">
              <button type="button" onClick={save}>
                Save workflow
              </button>
              {selected && (
                <button type="button" onClick={remove}>
                  Delete workflow
                </button>
              )}
            </div>
          </>
        )}
        {selected && (
          <form className="row" aria-label="Run the workflow" onSubmit={start}>
            {Object.keys(selected.inputs).map((k) => (
              <label key={k}>
                Input {k}
                <input value={inputs[k] ?? ""} onChange={(e) => setInputs((i) => ({ ...i, [k]: e.target.value }))} />
              </label>
            ))}
            <button type="submit" disabled={run?.status === "running"}>
              Run workflow
            </button>
          </form>
        )}
        <RunView run={run} />
        {selected && runs.length > 0 && (
          <table aria-label="Run history">
            <thead>
              <tr>
                <th>Run</th>
                <th>Status</th>
                <th>Started</th>
                <th>Duration</th>
                <th>Inputs</th>
                <th>Outputs</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.id}>
                  <td>
                    <code>{r.id}</code>
                  </td>
                  <td>{r.status}</td>
                  <td>{new Date(r.created_at * 1000).toLocaleTimeString()}</td>
                  <td>{r.duration_s == null ? "–" : `${r.duration_s.toFixed(2)} s`}</td>
                  <td>
                    <code>{JSON.stringify(r.inputs).slice(0, 80)}</code>
                  </td>
                  <td>
                    <code>{JSON.stringify(r.outputs ?? null).slice(0, 80)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
