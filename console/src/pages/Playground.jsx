import { useEffect, useRef, useState } from "react";
import { api } from "../api.js";
import { chatRequest, runChat } from "./chat.js";

const STORE = "hearth.playground";
const DEFAULTS = { temperature: "0.7", top_p: "", max_tokens: "128", seed: "", stop: "", json: false, tools: "" };

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORE)) ?? {};
  } catch {
    return {};
  }
}

function Stats({ answer }) {
  if (!answer) return null;
  const parts = [];
  if (answer.ttftMs != null) parts.push(`TTFT ${answer.ttftMs.toFixed(0)} ms`);
  if (answer.tokensPerSecond != null) parts.push(`${answer.tokensPerSecond.toFixed(1)} tok/s`);
  if (answer.usage) parts.push(`${answer.usage.completion_tokens} tokens`);
  if (answer.finish) parts.push(`finish: ${answer.finish}`);
  return <small className="stats">{parts.join(" · ")}</small>;
}

function Answer({ label, answer, streaming }) {
  return (
    <article className="message assistant" aria-label={label}>
      <div className="text">{streaming ?? answer?.text}</div>
      {answer?.toolCalls?.length > 0 && (
        <pre aria-label="Tool calls">{JSON.stringify(answer.toolCalls, null, 2)}</pre>
      )}
      {answer?.error && <p role="alert">{answer.error}</p>}
      <Stats answer={answer} />
    </article>
  );
}

export default function Playground() {
  const saved = useRef(load()).current;
  const [models, setModels] = useState([]);
  const [model, setModel] = useState(saved.model ?? "");
  const [compare, setCompare] = useState("");
  const [system, setSystem] = useState(saved.system ?? "");
  const [params, setParams] = useState({ ...DEFAULTS, ...(saved.params ?? {}) });
  const [turns, setTurns] = useState(saved.turns ?? []);
  const [input, setInput] = useState("");
  const [live, setLive] = useState(null);
  const [error, setError] = useState(null);
  const [raw, setRaw] = useState(null);
  const abort = useRef(null);

  useEffect(() => {
    api("/v1/models").then(
      (list) => {
        const ids = list.data.map((m) => m.id);
        setModels(ids);
        setModel((current) => (ids.includes(current) ? current : (ids[0] ?? "")));
      },
      (e) => setError(e.message),
    );
  }, []);

  useEffect(() => {
    localStorage.setItem(STORE, JSON.stringify({ model, system, params, turns }));
  }, [model, system, params, turns]);

  const set = (field) => (e) =>
    setParams((p) => ({ ...p, [field]: e.target.type === "checkbox" ? e.target.checked : e.target.value }));

  const send = async (e) => {
    e.preventDefault();
    const prompt = input.trim();
    if (!prompt || live) return;
    setError(null);
    const history = [...turns.map((t) => ({ role: t.role, content: t.content })), { role: "user", content: prompt }];
    let bodies;
    try {
      bodies = [model, ...(compare ? [compare] : [])].map((m) => chatRequest(m, system, history, params));
    } catch (err) {
      setError(`Tools must be a JSON array: ${err.message}`);
      return;
    }
    setInput("");
    setTurns((t) => [...t, { role: "user", content: prompt }]);
    const controller = new AbortController();
    abort.current = controller;
    const texts = bodies.map(() => "");
    setLive([...texts]);
    const results = await Promise.all(
      bodies.map((body, i) =>
        runChat(body, controller.signal, (text) => {
          texts[i] = text;
          setLive([...texts]);
        }).catch((err) => ({ text: texts[i], error: err.name === "AbortError" ? "Stopped." : err.message, chunks: [] })),
      ),
    );
    abort.current = null;
    setLive(null);
    setRaw({ request: bodies[0], response: results[0].chunks });
    setTurns((t) => [
      ...t,
      {
        role: "assistant",
        content: results[0].text,
        model: bodies[0].model,
        answer: { ...results[0], chunks: undefined },
        compared: results[1] ? { model: bodies[1].model, answer: { ...results[1], chunks: undefined } } : undefined,
      },
    ]);
  };

  const exportConversation = () => {
    const blob = new Blob([JSON.stringify({ model, system, params, turns }, null, 2)], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "hearth-conversation.json";
    link.click();
    URL.revokeObjectURL(link.href);
  };

  return (
    <div className="playground">
      <form className="settings" aria-label="Chat settings" onSubmit={(e) => e.preventDefault()}>
        <label>
          Model
          <select aria-label="Model" value={model} onChange={(e) => setModel(e.target.value)}>
            {models.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          Compare with
          <select aria-label="Compare with" value={compare} onChange={(e) => setCompare(e.target.value)}>
            <option value="">(none)</option>
            {models.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          System prompt
          <textarea rows={3} value={system} onChange={(e) => setSystem(e.target.value)} />
        </label>
        <label>
          Temperature
          <input type="number" min="0" max="2" step="0.1" value={params.temperature} onChange={set("temperature")} />
        </label>
        <label>
          Top p
          <input type="number" min="0" max="1" step="0.05" value={params.top_p} onChange={set("top_p")} />
        </label>
        <label>
          Max tokens
          <input type="number" min="1" step="1" value={params.max_tokens} onChange={set("max_tokens")} />
        </label>
        <label>
          Seed
          <input type="number" step="1" value={params.seed} onChange={set("seed")} />
        </label>
        <label>
          Stop sequences (comma-separated)
          <input type="text" value={params.stop} onChange={set("stop")} />
        </label>
        <label className="check">
          <input type="checkbox" checked={params.json} onChange={set("json")} /> JSON mode
        </label>
        <label>
          Tools (JSON array of OpenAI tool definitions)
          <textarea rows={3} value={params.tools} onChange={set("tools")} spellCheck={false} />
        </label>
      </form>
      <section className="chat" aria-label="Conversation">
        <div className="messages" aria-live="polite">
          {turns.map((t, i) =>
            t.role === "user" ? (
              <article key={i} className="message user" aria-label="You">
                <div className="text">{t.content}</div>
              </article>
            ) : (
              <div key={i} className={t.compared ? "side-by-side" : undefined}>
                <Answer label={`Answer from ${t.model}`} answer={t.answer} />
                {t.compared && <Answer label={`Answer from ${t.compared.model}`} answer={t.compared.answer} />}
              </div>
            ),
          )}
          {live && (
            <div className={live.length > 1 ? "side-by-side" : undefined}>
              {live.map((text, i) => (
                <Answer key={i} label="Streaming answer" streaming={text || "…"} />
              ))}
            </div>
          )}
        </div>
        {error && <p role="alert">{error}</p>}
        <form className="composer" onSubmit={send}>
          <label className="grow">
            Message
            <textarea
              rows={2}
              value={input}
              onChange={(e) => setInput(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === "Enter" && !e.shiftKey) send(e);
              }}
            />
          </label>
          <div className="buttons">
            <button type="submit" disabled={!model || !!live || !input.trim()}>
              Send
            </button>
            <button type="button" disabled={!live} onClick={() => abort.current?.abort()}>
              Stop
            </button>
            <button type="button" disabled={!!live || !turns.length} onClick={() => setTurns([])}>
              Clear conversation
            </button>
            <button type="button" disabled={!turns.length} onClick={exportConversation}>
              Export conversation
            </button>
          </div>
        </form>
        {raw && (
          <details>
            <summary>Raw request and response</summary>
            <h3>Request</h3>
            <pre aria-label="Raw request">{JSON.stringify(raw.request, null, 2)}</pre>
            <h3>Response (stream chunks)</h3>
            <pre aria-label="Raw response">{raw.response.map((c) => JSON.stringify(c)).join("\n")}</pre>
          </details>
        )}
      </section>
    </div>
  );
}
