import { useEffect, useState } from "react";
import { api } from "../api.js";
import { chatRequest, runChat } from "./chat.js";

const PROMPT = "Write a short paragraph about lighthouses.";
const FIELDS = [
  { key: "threads", label: "Threads (0: all cores)", type: "number", min: 0 },
  { key: "kv_cache_gb", label: "KV cache (GB)", type: "number", min: 0.01, step: "any" },
  { key: "kv_cache_precision", label: "KV cache precision", options: ["u8", "f16", "f32"] },
  { key: "max_num_seqs", label: "Max batched sequences", type: "number", min: 1 },
  { key: "context_length", label: "Context length cap (0: the model's)", type: "number", min: 0 },
  { key: "inference_precision", label: "Inference precision", options: ["", "f32", "f16", "bf16"] },
  { key: "keep_alive_seconds", label: "Keep-alive in seconds (empty: forever)", type: "number", min: 0, step: "any" },
  { key: "priority", label: "Priority", type: "number", min: -1000, max: 1000 },
];

function describe(tuning) {
  return `${tuning.threads || "all"} threads, KV ${tuning.kv_cache_gb} GB ${tuning.kv_cache_precision}, ${tuning.max_num_seqs} seqs`;
}

export default function Tuning() {
  const [services, setServices] = useState([]);
  const [name, setName] = useState("");
  const [tuning, setTuning] = useState(null);
  const [applied, setApplied] = useState(null);
  const [measurements, setMeasurements] = useState([]);
  const [busy, setBusy] = useState(null);
  const [message, setMessage] = useState(null);

  useEffect(() => {
    api("/v1/status").then(
      (s) => {
        const ids = s.models.map((m) => m.id);
        setServices(ids);
        setName(ids[0] ?? "");
      },
      (e) => setMessage(e.message),
    );
  }, []);

  useEffect(() => {
    if (!name) return;
    setMessage(null);
    api(`/v1/services/${encodeURIComponent(name)}/tuning`).then(
      (t) => {
        setTuning(t.tuning);
        setApplied(t.tuning);
      },
      (e) => setMessage(e.message),
    );
  }, [name]);

  const measure = async () => {
    setBusy("Measuring…");
    setMessage(null);
    try {
      const body = chatRequest(name, "", [{ role: "user", content: PROMPT }], {
        temperature: "0",
        max_tokens: "48",
        seed: "0",
        stop: "",
        json: false,
        tools: "",
      });
      const result = await runChat(body, undefined, () => {});
      setMeasurements((m) => [
        ...m,
        { settings: describe(applied), ttftMs: result.ttftMs, tokensPerSecond: result.tokensPerSecond, tokens: result.usage?.completion_tokens },
      ]);
    } catch (e) {
      setMessage(e.message);
    }
    setBusy(null);
  };

  const apply = async (e) => {
    e.preventDefault();
    setBusy("Applying and reloading…");
    setMessage(null);
    try {
      const t = await api(`/v1/services/${encodeURIComponent(name)}/tuning`, { method: "PUT", body: tuning });
      setTuning(t.tuning);
      setApplied(t.tuning);
      setMessage(`Applied: ${name} reloaded (${t.status.state}).`);
    } catch (err) {
      setMessage(err.message);
    }
    setBusy(null);
  };

  const set = (field) => (e) => {
    const raw = e.target.value;
    const value = field.options ? raw : raw === "" ? (field.key === "keep_alive_seconds" ? null : 0) : Number(raw);
    setTuning((t) => ({ ...t, [field.key]: value }));
  };

  return (
    <>
      <label className="narrow">
        Service
        <select aria-label="Service" value={name} onChange={(e) => setName(e.target.value)}>
          {services.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
      </label>
      {tuning && (
        <form className="row" aria-label="Engine settings" onSubmit={apply}>
          {FIELDS.map((f) => (
            <label key={f.key}>
              {f.label}
              {f.options ? (
                <select aria-label={f.label} value={tuning[f.key]} onChange={set(f)}>
                  {f.options.map((o) => (
                    <option key={o} value={o}>
                      {o || "device default"}
                    </option>
                  ))}
                </select>
              ) : (
                <input type="number" min={f.min} max={f.max} step={f.step ?? 1} value={tuning[f.key] ?? ""} onChange={set(f)} />
              )}
            </label>
          ))}
          <button type="submit" disabled={!!busy}>
            Apply and reload
          </button>
          <button type="button" disabled={!!busy} onClick={measure}>
            Measure
          </button>
        </form>
      )}
      {busy && <p role="status">{busy}</p>}
      {message && <p role="status">{message}</p>}
      <section aria-labelledby="measurements-heading">
        <h2 id="measurements-heading">Measurements</h2>
        <p className="hint">Each runs one 48-token answer at temperature 0 on the settings then applied.</p>
        <table aria-label="Measurements">
          <thead>
            <tr>
              <th>#</th>
              <th>Settings</th>
              <th>TTFT</th>
              <th>Tokens/s</th>
              <th>Tokens</th>
            </tr>
          </thead>
          <tbody>
            {measurements.map((m, i) => (
              <tr key={i}>
                <td>{i + 1}</td>
                <td>{m.settings}</td>
                <td>{m.ttftMs == null ? "–" : `${m.ttftMs.toFixed(0)} ms`}</td>
                <td>{m.tokensPerSecond == null ? "–" : m.tokensPerSecond.toFixed(1)}</td>
                <td>{m.tokens ?? "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
