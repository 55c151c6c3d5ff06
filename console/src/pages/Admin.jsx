import { useEffect, useState } from "react";
import { api, getKey, setKey } from "../api.js";

function when(seconds) {
  return seconds == null ? "never" : new Date(seconds * 1000).toLocaleString();
}

function Keys() {
  const [keys, setKeys] = useState(null);
  const [form, setForm] = useState({ name: "", scope: "inference", expires: "", rpm: "", tpm: "" });
  const [created, setCreated] = useState(null);
  const [message, setMessage] = useState(null);

  const refresh = () => api("/v1/keys").then((list) => setKeys(list.data), (e) => setMessage(e.message));
  useEffect(() => {
    refresh();
  }, []);

  const create = async (e) => {
    e.preventDefault();
    setMessage(null);
    const body = { name: form.name.trim(), scope: form.scope };
    if (form.expires.trim()) body.expires = form.expires.trim();
    if (form.rpm) body.requests_per_minute = Number(form.rpm);
    if (form.tpm) body.tokens_per_minute = Number(form.tpm);
    try {
      const key = await api("/v1/keys", { method: "POST", body });
      setCreated(key);
      setForm((f) => ({ ...f, name: "" }));
      if (!getKey()) {
        // The first key: from now on the server wants one, from this machine too. Any call
        // without one would be refused and swap this page for the sign-in form, taking the new
        // value off screen before it was copied. An admin key signs this console in; with any
        // other the list is not refreshed, and the console asks for a key on the next page.
        if (key.scope !== "admin") {
          setMessage(
            "Every client now needs a key, this console included: sign in with an admin key " +
              "(hearth keys create --name NAME --scope admin, on the server's machine).",
          );
          return;
        }
        setKey(key.key);
        setMessage(`The server now requires a key: this console signed in with ${key.name}.`);
      }
      refresh();
    } catch (err) {
      setMessage(err.message);
    }
  };

  const revoke = async (name) => {
    setMessage(null);
    try {
      await api(`/v1/keys/${encodeURIComponent(name)}`, { method: "DELETE" });
      setMessage(`Revoked ${name}.`);
      refresh();
    } catch (err) {
      setMessage(err.message);
    }
  };

  const field = (name) => (e) => setForm((f) => ({ ...f, [name]: e.target.value }));
  return (
    <section aria-labelledby="keys-heading">
      <h2 id="keys-heading">API keys</h2>
      <form className="row" aria-label="Create an API key" onSubmit={create}>
        <label>
          Key name
          <input value={form.name} onChange={field("name")} pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" required />
        </label>
        <label>
          Scope
          <select aria-label="Scope" value={form.scope} onChange={field("scope")}>
            <option value="inference">inference</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <label>
          Expires after (e.g. 30d)
          <input value={form.expires} onChange={field("expires")} placeholder="never" />
        </label>
        <label>
          Requests per minute
          <input type="number" min="0" value={form.rpm} onChange={field("rpm")} placeholder="no limit" />
        </label>
        <label>
          Tokens per minute
          <input type="number" min="0" value={form.tpm} onChange={field("tpm")} placeholder="no limit" />
        </label>
        <button type="submit">Create key</button>
      </form>
      {created && (
        <div className="notice" role="status" aria-label="New key">
          <p>
            Key <strong>{created.name}</strong> ({created.scope}) — copy it now, it is not shown again:
          </p>
          <code aria-label="New key value">{created.key}</code>{" "}
          <button type="button" onClick={() => navigator.clipboard?.writeText(created.key)}>
            Copy key
          </button>{" "}
          <button type="button" onClick={() => setCreated(null)}>
            Done
          </button>
        </div>
      )}
      {message && <p role="status">{message}</p>}
      <table aria-label="API keys">
        <thead>
          <tr>
            <th>Name</th>
            <th>Scope</th>
            <th>Prefix</th>
            <th>Created</th>
            <th>Expires</th>
            <th>Limits</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {keys?.map((k) => (
            <tr key={k.name}>
              <td>{k.name}</td>
              <td>{k.scope}</td>
              <td>
                <code>{k.prefix}…</code>
              </td>
              <td>{when(k.created)}</td>
              <td>{when(k.expires)}</td>
              <td>
                {k.requests_per_minute || "∞"} req/min, {k.tokens_per_minute || "∞"} tok/min
              </td>
              <td>
                <button type="button" aria-label={`Revoke ${k.name}`} onClick={() => revoke(k.name)}>
                  Revoke
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {keys && !keys.length && <p>No keys: only this machine (loopback) may use the server.</p>}
    </section>
  );
}

function Audit() {
  const [filters, setFilters] = useState({ model: "", key: "", event: "", since: "1h" });
  const [records, setRecords] = useState(null);
  const [verdict, setVerdict] = useState(null);
  const [message, setMessage] = useState(null);
  const field = (name) => (e) => setFilters((f) => ({ ...f, [name]: e.target.value }));

  const search = async (e) => {
    e?.preventDefault();
    setMessage(null);
    const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v.trim()));
    query.set("limit", "200");
    try {
      setRecords((await api(`/v1/audit?${query}`)).data);
    } catch (err) {
      setMessage(err.message);
    }
  };

  const verify = async () => {
    setMessage(null);
    try {
      setVerdict(await api("/v1/audit/verify"));
    } catch (err) {
      setMessage(err.message);
    }
  };

  return (
    <section aria-labelledby="audit-heading">
      <h2 id="audit-heading">Audit log</h2>
      <form className="row" aria-label="Search the audit log" onSubmit={search}>
        <label>
          Model
          <input value={filters.model} onChange={field("model")} />
        </label>
        <label>
          Key
          <input value={filters.key} onChange={field("key")} />
        </label>
        <label>
          Event
          <input value={filters.event} onChange={field("event")} placeholder="request, refused, key_created…" />
        </label>
        <label>
          Newer than
          <input value={filters.since} onChange={field("since")} placeholder="15m, 2h, 7d" />
        </label>
        <button type="submit">Search</button>
        <button type="button" onClick={verify}>
          Verify chain
        </button>
      </form>
      {verdict && (
        <p role="status" className={verdict.ok ? "good" : "bad"}>
          {verdict.ok
            ? `Chain intact: ${verdict.records} records verified.`
            : `Chain BROKEN after ${verdict.records} good records: ${verdict.broken}`}
        </p>
      )}
      {message && <p role="alert">{message}</p>}
      {records && (
        <table aria-label="Audit records">
          <thead>
            <tr>
              <th>#</th>
              <th>Time</th>
              <th>Event</th>
              <th>Key</th>
              <th>Endpoint</th>
              <th>Model</th>
              <th>Status</th>
              <th>Tokens</th>
            </tr>
          </thead>
          <tbody>
            {records.map((r) => (
              <tr key={r.seq}>
                <td>{r.seq}</td>
                <td>{r.time}</td>
                <td>{r.event}</td>
                <td>{r.key ?? "–"}</td>
                <td>{r.endpoint ? `${r.method} ${r.endpoint}` : "–"}</td>
                <td>{r.model ?? "–"}</td>
                <td>{r.status ?? "–"}</td>
                <td>{r.completion_tokens != null ? `${r.prompt_tokens ?? 0} → ${r.completion_tokens}` : "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {records && !records.length && <p>No records match.</p>}
    </section>
  );
}

export default function Admin() {
  return (
    <>
      <Keys />
      <Audit />
    </>
  );
}
