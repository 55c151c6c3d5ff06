import { useEffect, useState } from "react";
import { ApiError, api, authHeaders, formatBytes } from "../api.js";
import { usePoll } from "../hooks.js";

const ACTIVE = ["queued", "running", "cancelling"];

function jobSubject(job) {
  return job.params.model ?? job.params.filename ?? job.params.path ?? "";
}

function Progress({ job, onChange }) {
  const p = job.progress;
  const fraction = p?.total ? p.done / p.total : null;
  const subject = jobSubject(job);
  const [message, setMessage] = useState(null);
  const cancel = async () => {
    setMessage(null);
    try {
      onChange(await api(`/v1/hub/jobs/${encodeURIComponent(job.id)}/cancel`, { method: "POST" }));
    } catch (e) {
      setMessage(e.message);
    }
  };
  return (
    <li aria-label={`Job ${job.kind} ${subject}`}>
      <strong>{job.kind}</strong> {subject} — <span className={`state ${job.status}`}>{job.status}</span>
      {(job.status === "running" || job.status === "cancelling") && (
        <progress
          aria-label={`Progress of ${job.kind} ${subject}`}
          value={fraction ?? undefined}
          max={fraction == null ? undefined : 1}
        />
      )}
      {p?.message && <small> {p.message}</small>}
      {(job.status === "queued" || job.status === "running") && (
        <button type="button" aria-label={`Cancel ${job.kind} ${subject}`} onClick={cancel}>
          Cancel
        </button>
      )}
      {job.error && job.status !== "cancelled" && <span role="alert"> {job.error}</span>}
      {message && <span role="alert"> {message}</span>}
    </li>
  );
}

function ImportPath({ onStarted }) {
  const [path, setPath] = useState("");
  const [name, setName] = useState("");
  const [message, setMessage] = useState(null);
  return (
    <form
      className="row"
      aria-label="Import from a path"
      onSubmit={async (e) => {
        e.preventDefault();
        setMessage(null);
        try {
          const job = await api("/v1/hub/import", { method: "POST", body: { path, name: name || undefined } });
          setPath("");
          setName("");
          onStarted(job);
        } catch (err) {
          setMessage(err.message);
        }
      }}
    >
      <label>
        Import from a path on the server
        <input
          aria-label="Path on the server"
          placeholder="/home/me/models/model.gguf or a model folder"
          size={48}
          value={path}
          onChange={(e) => setPath(e.target.value)}
        />
      </label>
      <label>
        as
        <input aria-label="Import as" placeholder="name (optional)" value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <button type="submit" disabled={!path.trim()}>
        Import
      </button>
      {message && <span role="alert">{message}</span>}
    </form>
  );
}

function Verified({ result }) {
  if (!result) return "–";
  if (result === "checking") return <span className="state running">checking…</span>;
  if (result.error) return <span role="alert">{result.error}</span>;
  const when = `checked ${new Date(result.time * 1000).toLocaleString()}`;
  if (result.ok)
    return (
      <span className="state succeeded" title={when}>
        verified
      </span>
    );
  const files = result.problems.map((p) => p.split(": ")[0]);
  return (
    <span className="state failed" role="alert" title={`${when}\n${result.problems.join("\n")}`}>
      damaged: {files.join(", ")}
    </span>
  );
}

function Convert({ installed, onStarted }) {
  const [model, setModel] = useState("");
  const [format, setFormat] = useState("openvino");
  const [precision, setPrecision] = useState("int8");
  const [message, setMessage] = useState(null);
  return (
    <form
      className="row"
      aria-label="Convert a model"
      onSubmit={async (e) => {
        e.preventDefault();
        setMessage(null);
        try {
          await api("/v1/hub/convert", { method: "POST", body: { model: model || installed[0], format, precision } });
          onStarted();
        } catch (err) {
          setMessage(err.message);
        }
      }}
    >
      <label>
        Convert
        <select aria-label="Convert" value={model} onChange={(e) => setModel(e.target.value)}>
          {installed.map((n) => (
            <option key={n}>{n}</option>
          ))}
        </select>
      </label>
      <label>
        to format
        <select aria-label="to format" value={format} onChange={(e) => setFormat(e.target.value)}>
          <option>openvino</option>
          <option>onnx</option>
        </select>
      </label>
      <label>
        precision
        <select aria-label="precision" value={precision} onChange={(e) => setPrecision(e.target.value)}>
          {["fp32", "fp16", "int8", "int4"].map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={!installed.length}>
        Start conversion
      </button>
      {message && <span role="alert">{message}</span>}
    </form>
  );
}

function Upload({ onStarted }) {
  const [message, setMessage] = useState(null);
  return (
    <label>
      Import a file (.gguf, .zip, .tar.gz)
      <input
        type="file"
        accept=".gguf,.zip,.tar,.tgz,.gz"
        onChange={async (e) => {
          const file = e.target.files?.[0];
          if (!file) return;
          setMessage(null);
          const res = await fetch(`/v1/hub/upload?filename=${encodeURIComponent(file.name)}`, {
            method: "POST",
            headers: authHeaders({ "Content-Type": "application/octet-stream" }),
            body: file,
          });
          if (res.ok) onStarted();
          else setMessage((await res.json().catch(() => null))?.error?.message ?? `${res.status}`);
          e.target.value = "";
        }}
      />
      {message && <span role="alert">{message}</span>}
    </label>
  );
}

export default function Models() {
  const [catalog, setCatalog] = useState(null);
  const [installed, setInstalled] = useState(null);
  const [jobs, setJobs] = useState([]);
  const [message, setMessage] = useState(null);
  const [verifying, setVerifying] = useState({});

  const refresh = async () => {
    const [c, i] = await Promise.all([api("/v1/hub/catalog"), api("/v1/hub/models")]);
    setCatalog(c);
    setInstalled(i);
  };
  useEffect(() => {
    refresh().catch((e) => setMessage(e.message));
  }, []);

  const running = jobs.some((j) => ACTIVE.includes(j.status));
  const track = (job) => setJobs((j) => [...j.filter((x) => x.id !== job.id), job]);
  usePoll(async () => {
    const list = await api("/v1/hub/jobs");
    setJobs((before) => {
      const finished = list.data.some(
        (j) => j.finished && before.some((b) => b.id === j.id && !b.finished),
      );
      if (finished) refresh().catch((e) => setMessage(e.message));
      return list.data;
    });
  }, running ? 700 : 3000);

  const pull = async (name) => {
    setMessage(null);
    try {
      track(await api("/v1/hub/pull", { method: "POST", body: { model: name } }));
    } catch (e) {
      setMessage(e.message);
    }
  };

  const remove = async (name) => {
    setMessage(null);
    try {
      await api(`/v1/hub/models/${encodeURIComponent(name)}`, { method: "DELETE" });
      setMessage(`Deleted ${name}.`);
      await refresh();
    } catch (e) {
      setMessage(e instanceof ApiError ? `Cannot delete ${name}: ${e.message}` : e.message);
    }
  };

  // The server keeps each artifact's latest verification (GET /v1/hub/models' `verified`); this
  // holds only what is in flight or failed to run.
  const verify = async (name) => {
    setVerifying((v) => ({ ...v, [name]: "checking" }));
    try {
      await api(`/v1/hub/models/${encodeURIComponent(name)}/verify`, { method: "POST" });
      await refresh();
      setVerifying(({ [name]: _, ...rest }) => rest);
    } catch (e) {
      setVerifying((v) => ({ ...v, [name]: { error: e.message } }));
    }
  };
  const verified = {
    ...Object.fromEntries((installed?.verified ?? []).map((v) => [v.name, v])),
    ...verifying,
  };

  const names = installed?.data.map((m) => m.name) ?? [];
  return (
    <>
      {message && <p role="status">{message}</p>}
      <section aria-labelledby="installed-heading">
        <h2 id="installed-heading">Installed</h2>
        <table aria-label="Installed models">
          <thead>
            <tr>
              <th>Name</th>
              <th>Format</th>
              <th>Precision</th>
              <th>Task</th>
              <th>Size</th>
              <th>Source</th>
              <th>Verified</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {installed?.data.map((m) => (
              <tr key={m.name}>
                <td>{m.name}</td>
                <td>{m.format}</td>
                <td>{m.precision ?? "–"}</td>
                <td>{m.task}</td>
                <td>{formatBytes(m.files.reduce((t, f) => t + f.size, 0))}</td>
                <td>
                  {m.source.kind}: {m.source.ref}
                  {m.source.revision ? ` @ ${m.source.revision.slice(0, 12)}` : ""}
                </td>
                <td aria-label={`Verification of ${m.name}`}>
                  <Verified result={verified[m.name]} />
                </td>
                <td>
                  <button
                    type="button"
                    aria-label={`Verify ${m.name}`}
                    disabled={verified[m.name] === "checking"}
                    onClick={() => verify(m.name)}
                  >
                    Verify
                  </button>{" "}
                  <button type="button" aria-label={`Delete ${m.name}`} onClick={() => remove(m.name)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
            {installed?.damaged.map((d) => (
              <tr key={d.name} className="damaged">
                <td>{d.name}</td>
                <td colSpan={6} role="alert">
                  damaged: {d.reason ?? d.error ?? "unreadable manifest"}
                </td>
                <td>
                  <button type="button" aria-label={`Delete ${d.name}`} onClick={() => remove(d.name)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {installed && !installed.data.length && <p>No models installed yet: pull one from the catalog.</p>}
        <Convert installed={names} onStarted={() => setJobs((j) => [...j])} />
        <Upload onStarted={() => setJobs((j) => [...j])} />
        <ImportPath onStarted={track} />
      </section>
      <section aria-labelledby="jobs-heading">
        <h2 id="jobs-heading">Jobs</h2>
        {jobs.length ? (
          <ul className="plain" aria-label="Hub jobs">
            {[...jobs].reverse().map((j) => (
              <Progress key={j.id} job={j} onChange={track} />
            ))}
          </ul>
        ) : (
          <p>No pulls, imports or conversions yet.</p>
        )}
      </section>
      <section aria-labelledby="catalog-heading">
        <h2 id="catalog-heading">Catalog</h2>
        {catalog && (
          <p className="hint">
            This machine: {catalog.targets.join(", ")}; converters {catalog.converters ? "installed" : "not installed"}.
          </p>
        )}
        <table aria-label="Catalog">
          <thead>
            <tr>
              <th>Model</th>
              <th>Kinds</th>
              <th>Parameters</th>
              <th>Size</th>
              <th>Best here</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {catalog?.data.map(({ entry, suitable, installed: has }) => (
              <tr key={entry.name}>
                <td>
                  {entry.title} <code>{entry.name}</code>
                  {entry.gated && " (gated)"}
                </td>
                <td>{entry.kinds.join(", ")}</td>
                <td>{entry.params}</td>
                <td>{entry.size_gb} GB</td>
                <td>{suitable.length ? `${suitable[0].format} ${suitable[0].precision}` : "not on this machine"}</td>
                <td>
                  {has ? (
                    "installed"
                  ) : (
                    <button
                      type="button"
                      aria-label={`Pull ${entry.name}`}
                      disabled={!suitable.length || jobs.some((j) => j.params.model === entry.name && !j.finished)}
                      onClick={() => pull(entry.name)}
                    >
                      Pull
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
