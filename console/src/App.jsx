import { useEffect, useState } from "react";
import { api, getKey, onUnauthorized, setKey } from "./api.js";
import Dashboard from "./pages/Dashboard.jsx";
import Playground from "./pages/Playground.jsx";
import Models from "./pages/Models.jsx";
import Workflows from "./pages/Workflows.jsx";
import Admin from "./pages/Admin.jsx";
import Tuning from "./pages/Tuning.jsx";

const PAGES = [
  { path: "/", title: "Dashboard", view: Dashboard },
  { path: "/playground", title: "Playground", view: Playground },
  { path: "/models", title: "Models", view: Models },
  { path: "/workflows", title: "Workflows", view: Workflows },
  { path: "/tuning", title: "Tuning", view: Tuning },
  { path: "/admin", title: "Admin", view: Admin },
];

function currentPath() {
  const hash = window.location.hash.replace(/^#/, "");
  return PAGES.some((p) => p.path === hash) ? hash : "/";
}

function KeyForm({ reason, onKey }) {
  const [value, setValue] = useState("");
  return (
    <main className="login">
      <h1>Hearth</h1>
      <p role="alert">{reason}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onKey(value.trim());
        }}
      >
        <label>
          API key
          <input type="password" value={value} autoFocus autoComplete="off" onChange={(e) => setValue(e.target.value)} />
        </label>
        <button type="submit" disabled={!value.trim()}>
          Sign in
        </button>
      </form>
      <p className="hint">The key is kept in this tab only (session storage).</p>
    </main>
  );
}

export default function App() {
  const [path, setPath] = useState(currentPath);
  // null: checking; "ok": the API answers; otherwise the reason a key is needed.
  const [access, setAccess] = useState(null);

  useEffect(() => {
    const follow = () => setPath(currentPath());
    window.addEventListener("hashchange", follow);
    onUnauthorized((message) => setAccess(message));
    return () => window.removeEventListener("hashchange", follow);
  }, []);

  useEffect(() => {
    if (access !== null) return;
    api("/v1/status")
      .then(() => setAccess("ok"))
      .catch((err) => setAccess(err.status === 401 ? err.message : "ok"));
  }, [access]);

  if (access === null) return <p className="loading">Connecting…</p>;
  if (access !== "ok")
    return (
      <KeyForm
        reason={`This server needs an API key. ${access}`}
        onKey={(key) => {
          setKey(key);
          setAccess(null);
        }}
      />
    );

  const page = PAGES.find((p) => p.path === path) ?? PAGES[0];
  const View = page.view;
  return (
    <div className="shell">
      <header>
        <span className="brand">Hearth</span>
        <nav aria-label="Console">
          {PAGES.map((p) => (
            <a key={p.path} href={`#${p.path}`} aria-current={p === page ? "page" : undefined}>
              {p.title}
            </a>
          ))}
          <a href="/docs" target="_blank" rel="noreferrer">
            API docs
          </a>
        </nav>
        {getKey() && (
          <button
            type="button"
            className="quiet"
            onClick={() => {
              setKey(null);
              setAccess(null);
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main aria-label={page.title}>
        <h1>{page.title}</h1>
        <View />
      </main>
    </div>
  );
}
