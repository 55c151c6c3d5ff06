import { useEffect, useRef, useState } from "react";
import { api, formatBytes } from "../api.js";
import Chart from "../components/Chart.jsx";
import { usePoll } from "../hooks.js";

// Polled every 1.5 s (the issue asks for at most 2 s); 160 samples are the last four minutes.
const POLL_MS = 1500;
const KEEP = 160;

function sum(items, pick) {
  return items.reduce((total, item) => total + (pick(item) || 0), 0);
}

/** Rates between two snapshots of GET /v1/status/live. */
function rates(prev, snap) {
  const seconds = Math.max(snap.time - prev.time, 0.001);
  const before = Object.fromEntries(prev.counters.map((c) => [c.id, c]));
  let tokens = 0;
  let ttftSum = 0;
  let ttftCount = 0;
  let errors = 0;
  for (const c of snap.counters) {
    const b = before[c.id] ?? { completion_tokens: 0, ttft_seconds_sum: 0, ttft_count: 0, errors: 0 };
    tokens += c.completion_tokens - b.completion_tokens;
    ttftSum += c.ttft_seconds_sum - b.ttft_seconds_sum;
    ttftCount += c.ttft_count - b.ttft_count;
    errors += c.errors - b.errors;
  }
  return {
    tps: Math.max(tokens, 0) / seconds,
    ttft: ttftCount > 0 ? (ttftSum / ttftCount) * 1000 : null,
    errors: Math.max(errors, 0),
  };
}

function Machine() {
  const [system, setSystem] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api("/v1/system").then(setSystem, (e) => setError(e.message));
  }, []);
  if (error) return <p role="alert">{error}</p>;
  if (!system) return <p>Reading the machine…</p>;
  return (
    <section aria-labelledby="machine">
      <h2 id="machine">This machine</h2>
      <dl className="facts">
        <dt>CPU</dt>
        <dd>
          {system.cpu.model} ({system.cpu.physical_cores ?? "?"} cores, {system.cpu.logical_cores ?? "?"} threads)
        </dd>
        <dt>Memory</dt>
        <dd>
          {formatBytes(system.memory.available_bytes)} free of {formatBytes(system.memory.total_bytes)}
        </dd>
        <dt>Runtimes</dt>
        <dd>{system.runtimes.map((r) => `${r.name} ${r.version ?? "(not installed)"}`).join(", ")}</dd>
        <dt>Devices</dt>
        <dd>
          <ul className="plain">
            {system.devices.map((d) => (
              <li key={`${d.runtime}-${d.id}`}>
                {d.name} — <code>{d.id}</code> via {d.runtime}
                {d.memory_bytes ? `, ${formatBytes(d.memory_bytes)}` : ""}
              </li>
            ))}
          </ul>
        </dd>
      </dl>
    </section>
  );
}

function LoadedModels({ snap, counters, onChange }) {
  const [message, setMessage] = useState(null);
  const unload = async (id) => {
    setMessage(null);
    try {
      await api("/v1/status/unload", { method: "POST", body: { model: id } });
      setMessage(`Unloaded ${id}.`);
      onChange();
    } catch (e) {
      setMessage(e.message);
    }
  };
  return (
    <section aria-labelledby="loaded">
      <h2 id="loaded">Models</h2>
      <p className="hint">
        Memory used by models: {formatBytes(snap.status.memory_used_bytes)} of a{" "}
        {formatBytes(snap.status.memory_budget_bytes)} budget.
      </p>
      <table aria-label="Served models">
        <thead>
          <tr>
            <th>Model</th>
            <th>State</th>
            <th>Device</th>
            <th>Reserved</th>
            <th>Resident</th>
            <th>Running</th>
            <th>Queued</th>
            <th>Idle</th>
            <th>Requests</th>
            <th>Errors</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {snap.status.models.map((m) => (
            <tr key={m.id}>
              <td>{m.id}</td>
              <td>
                <span className={`state ${m.state}`}>{m.state}</span>
              </td>
              <td>{m.device}</td>
              <td>{formatBytes(m.memory_bytes)}</td>
              <td>{formatBytes(m.rss_bytes)}</td>
              <td>
                {m.active} / {m.slots}
              </td>
              <td>{m.queued}</td>
              <td>{m.idle_seconds == null ? "–" : `${Math.round(m.idle_seconds)} s`}</td>
              <td>{counters[m.id]?.requests ?? 0}</td>
              <td>{counters[m.id]?.errors ?? 0}</td>
              <td>
                <button
                  type="button"
                  aria-label={`Unload ${m.id}`}
                  disabled={m.state !== "loaded"}
                  onClick={() => unload(m.id)}
                >
                  Unload
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {message && <p role="status">{message}</p>}
    </section>
  );
}

function RecentErrors({ errors }) {
  return (
    <section aria-labelledby="recent-errors">
      <h2 id="recent-errors">Recent errors</h2>
      {errors.length ? (
        <div className="scroll">
          <table aria-label="Recent errors">
            <thead>
              <tr>
                <th>Time</th>
                <th>Model</th>
                <th>Request</th>
                <th>Status</th>
                <th>Message</th>
              </tr>
            </thead>
            <tbody>
              {errors.map((e) => (
                <tr key={e.request_id + e.time}>
                  <td>{new Date(e.time * 1000).toLocaleTimeString()}</td>
                  <td>{e.model || "–"}</td>
                  <td>
                    <code>
                      {e.method} {e.path}
                    </code>
                  </td>
                  <td>{e.status}</td>
                  <td>{e.message || "–"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p>No failed requests since the server started.</p>
      )}
    </section>
  );
}

export default function Dashboard() {
  const [snap, setSnap] = useState(null);
  const [series, setSeries] = useState({ tps: [], ttft: [], queue: [], memory: [], errors: [] });
  const [error, setError] = useState(null);
  const previous = useRef(null);

  const poll = async () => {
    try {
      const next = await api("/v1/status/live");
      const prev = previous.current;
      previous.current = next;
      setSnap(next);
      setError(null);
      if (!prev) return;
      const r = rates(prev, next);
      const push = (list, value) => [...list, value].slice(-KEEP);
      setSeries((s) => ({
        tps: push(s.tps, r.tps),
        ttft: push(s.ttft, r.ttft),
        queue: push(s.queue, sum(next.status.models, (m) => m.queued)),
        memory: push(s.memory, next.status.memory_used_bytes / 2 ** 20),
        errors: push(s.errors, r.errors),
      }));
    } catch (e) {
      setError(e.message);
    }
  };
  usePoll(poll, POLL_MS);

  const counters = snap ? Object.fromEntries(snap.counters.map((c) => [c.id, c])) : {};
  return (
    <>
      {error && <p role="alert">{error}</p>}
      <section aria-labelledby="live" className="charts-section">
        <h2 id="live">Live</h2>
        <div className="charts">
          <Chart title="Tokens per second" values={series.tps} unit="tok/s" />
          <Chart title="Time to first token" values={series.ttft} unit="ms" digits={0} />
          <Chart title="Queue depth" values={series.queue} unit="waiting" digits={0} />
          <Chart title="Model memory" values={series.memory} unit="MiB" digits={0} />
          <Chart title="Errors" values={series.errors} unit="per poll" digits={0} />
        </div>
        {snap && (
          <p className="hint">
            Machine: CPU {snap.cpu_percent.toFixed(0)} %, memory {formatBytes(snap.system_memory_used_bytes)} used of{" "}
            {formatBytes(snap.system_memory_total_bytes)}.
          </p>
        )}
      </section>
      {snap && <LoadedModels snap={snap} counters={counters} onChange={poll} />}
      {snap && <RecentErrors errors={snap.recent_errors} />}
      <Machine />
    </>
  );
}
