// The seed system's client in Node.js (20+): fetch creates the job, and the progress
// stream (Server-Sent Events) is read from fetch's body, with the seed plan's policy
// (herdlab preset `seed-default`), the same logic as examples/web/seed-client.js:
//
//   create: at most 4 attempts; before retry n wait min(1000 ms * 2^(n-1), 30000 ms)
//           times U(0.9, 1.1); retry 5xx, network errors and timeouts; never 4xx;
//           a Retry-After hint replaces the delay (capped at 60 s).
//   stream: after a drop, at most 3 reconnect attempts, min(1000 ms * 2^(n-1), 10000 ms)
//           times U(0.9, 1.1); a connection that opens starts the count again; resume
//           with Last-Event-ID.
//
// Usage: node seed-client.mjs --api URL [--streams URL] [--client ID] [--jobs N]
// Prints one JSON line per job ({"outcome": ..., "events": [...], ...}); exit 0 when
// every job completed, 1 otherwise.

const CREATE = { maxAttempts: 4, baseMs: 1000, capMs: 30000, jitter: 0.1, timeoutMs: 10000 };
const RECONNECT = { maxAttempts: 3, baseMs: 1000, capMs: 10000, jitter: 0.1 };
const RETRY_AFTER_CAP_MS = 60000;
const IDLE_MS = 5000; // no byte (not even a heartbeat) for this long: the stream is dead

function args() {
  const out = { api: null, streams: null, client: "node", jobs: 1 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in out) || argv[i + 1] === undefined) {
      console.error(`usage: node seed-client.mjs --api URL [--streams URL] [--client ID] [--jobs N]`);
      process.exit(2);
    }
    out[key] = key === "jobs" ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!out.api) {
    console.error("--api URL is required");
    process.exit(2);
  }
  out.streams ??= out.api;
  return out;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function backoffMs(policy, n) {
  const v = Math.min(policy.baseMs * 2 ** (n - 1), policy.capMs);
  return v * (1 - policy.jitter + 2 * policy.jitter * Math.random());
}

function retryAfterMs(response) {
  const value = response.headers.get("retry-after");
  if (value === null) return null;
  if (/^\d+$/.test(value.trim())) return Math.min(1000 * Number(value), RETRY_AFTER_CAP_MS);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.min(Math.max(0, when - Date.now()), RETRY_AFTER_CAP_MS);
}

class NotRetryable extends Error {}

async function createJob(opts, log) {
  const key = crypto.randomUUID();
  for (let attempt = 1; ; attempt++) {
    let hintMs = null;
    try {
      const response = await fetch(`${opts.api}/api/ai/jobs`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Herdlab-Client": opts.client, "Idempotency-Key": key },
        body: "{}",
        signal: AbortSignal.timeout(CREATE.timeoutMs),
      });
      log(`create attempt ${attempt}: ${response.status}`);
      if (response.status === 201) return [(await response.json()).id, attempt];
      await response.arrayBuffer();
      if (response.status !== 429 && response.status < 500) {
        throw new NotRetryable(`not retryable: ${response.status}`);
      }
      hintMs = retryAfterMs(response);
    } catch (error) {
      if (error instanceof NotRetryable) throw error;
      log(`create attempt ${attempt}: ${error.name} ${error.message}`);
    }
    if (attempt >= CREATE.maxAttempts) throw new Error(`gave up after ${attempt} attempts`);
    await sleep(hintMs ?? backoffMs(CREATE, attempt));
  }
}

// One stream connection: resolves "result" at the result event; throws on a drop.
// state.opened tells whether this connection got through (a 200 with the right type).
async function readStream(opts, jobId, state) {
  const headers = { Accept: "text/event-stream", "X-Herdlab-Client": opts.client };
  if (state.lastId) headers["Last-Event-ID"] = state.lastId;
  const controller = new AbortController();
  let idle = setTimeout(() => controller.abort(), IDLE_MS);
  try {
    const response = await fetch(`${opts.streams}/api/ai/jobs/${jobId}/stream`, {
      headers,
      signal: controller.signal,
    });
    const type = response.headers.get("content-type") || "";
    if (response.status !== 200 || !type.startsWith("text/event-stream")) {
      await response.arrayBuffer().catch(() => {});
      throw new Error(`stream answered ${response.status}`);
    }
    state.opened = true;
    const decoder = new TextDecoder();
    let buffer = "";
    let event = { id: null, type: "message", data: "" };
    for await (const chunk of response.body) {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), IDLE_MS);
      buffer += decoder.decode(chunk, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (event.id !== null) {
            state.lastId = event.id;
            state.events.push(Number(event.id));
            if (event.type === "result") return "result";
          }
          event = { id: null, type: "message", data: "" };
        } else if (line.startsWith("id:")) event.id = line.slice(3).trim();
        else if (line.startsWith("event:")) event.type = line.slice(6).trim();
        else if (line.startsWith("data:")) event.data += line.slice(5).trim();
      }
    }
    throw new Error("stream closed before the result");
  } finally {
    clearTimeout(idle);
  }
}

async function follow(opts, jobId, log) {
  const state = { lastId: "", events: [], opened: false, reconnects: 0 };
  let failures = 0;
  for (;;) {
    state.opened = false;
    try {
      await readStream(opts, jobId, state);
      return ["completed", state];
    } catch (error) {
      if (state.opened) failures = 0;
      if (failures >= RECONNECT.maxAttempts) return ["gave_up", state];
      failures += 1;
      state.reconnects += 1;
      const delay = backoffMs(RECONNECT, failures);
      log(`stream dropped (${error.message}); reconnect ${failures} in ${Math.round(delay)} ms`);
      await sleep(delay);
    }
  }
}

async function job(opts, n) {
  const log = (message) => console.error(`[${opts.client} job ${n}] ${message}`);
  let jobId;
  let attempts;
  try {
    [jobId, attempts] = await createJob(opts, log);
  } catch (error) {
    const outcome = error instanceof NotRetryable ? "failed" : "gave_up";
    return { outcome, error: error.message };
  }
  const [outcome, state] = await follow(opts, jobId, log);
  return { outcome, job: jobId, attempts, reconnects: state.reconnects, events: state.events };
}

const opts = args();
const results = await Promise.all(
  Array.from({ length: opts.jobs }, (_, i) =>
    job(opts, i + 1), // one client id: the lab tells the jobs apart by Idempotency-Key
  ),
);
for (const r of results) console.log(JSON.stringify(r));
process.exit(results.every((r) => r.outcome === "completed") ? 0 : 1);
