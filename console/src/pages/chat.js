import { stream } from "../api.js";

/** The chat request the playground sends for `messages` with the form's `params`. */
export function chatRequest(model, system, messages, params) {
  const body = {
    model,
    messages: [...(system.trim() ? [{ role: "system", content: system }] : []), ...messages],
    stream: true,
    stream_options: { include_usage: true },
  };
  const number = (v) => (v === "" || v == null ? undefined : Number(v));
  for (const [field, value] of [
    ["temperature", number(params.temperature)],
    ["top_p", number(params.top_p)],
    ["max_tokens", number(params.max_tokens)],
    ["seed", number(params.seed)],
  ]) {
    if (value !== undefined && !Number.isNaN(value)) body[field] = value;
  }
  const stops = params.stop
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (stops.length) body.stop = stops;
  if (params.json) body.response_format = { type: "json_object" };
  if (params.tools.trim()) body.tools = JSON.parse(params.tools);
  return body;
}

/** Stream one answer; `onText(text)` gets the whole text so far. Returns the answer, its raw
 * chunks and its timings (time to first token, tokens per second). */
export async function runChat(body, signal, onText) {
  const started = performance.now();
  let first = null;
  let text = "";
  let usage = null;
  let finish = null;
  const toolCalls = [];
  const chunks = [];
  for await (const chunk of stream("/v1/chat/completions", body, signal)) {
    chunks.push(chunk);
    if (chunk.error) throw new Error(chunk.error.message);
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    const delta = choice.delta ?? {};
    if (delta.content || delta.tool_calls) first ??= performance.now();
    if (delta.content) {
      text += delta.content;
      onText(text);
    }
    for (const call of delta.tool_calls ?? []) {
      const slot = (toolCalls[call.index] ??= { name: "", arguments: "" });
      if (call.function?.name) slot.name += call.function.name;
      if (call.function?.arguments) slot.arguments += call.function.arguments;
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  const ended = performance.now();
  const tokens = usage?.completion_tokens ?? 0;
  const ttft = first == null ? null : first - started;
  const decoding = first == null ? 0 : (ended - first) / 1000;
  return {
    text,
    toolCalls,
    finish,
    usage,
    chunks,
    ttftMs: ttft,
    tokensPerSecond: tokens > 1 && decoding > 0 ? (tokens - 1) / decoding : null,
  };
}
