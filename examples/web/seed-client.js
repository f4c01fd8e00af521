// The seed system's web client: fetch creates the job, EventSource follows its progress.
//
// Query parameters: api= and streams= (base URLs; the lab prints them), client= (an id
// for the lab's records, default "web"), mode=seed (default: the seed plan's policy in
// this file) or mode=native (EventSource's own reconnection: the server's `retry:` or
// the browser's default, no backoff, stops for good on a non-200 answer), autostart=0
// (wait for window.herdlabStart(): a harness loads pages ahead and starts them on time).
//
// The seed plan's policy (herdlab preset `seed-default`):
//   create: at most 4 attempts; before retry n wait min(1000 ms * 2^(n-1), 30000 ms)
//           times U(0.9, 1.1); retry 5xx, network errors and timeouts; never 4xx;
//           a Retry-After hint replaces the delay (capped at 60 s).
//   stream: after a drop, at most 3 reconnect attempts, min(1000 ms * 2^(n-1), 10000 ms)
//           times U(0.9, 1.1); a connection that opens starts the count again; resume
//           after the last event id received.
"use strict";

const params = new URLSearchParams(location.search);
const API = params.get("api") || location.origin;
const STREAMS = params.get("streams") || API;
const CLIENT = params.get("client") || "web";
const MODE = params.get("mode") || "seed";

const CREATE = { maxAttempts: 4, baseMs: 1000, capMs: 30000, jitter: 0.1, timeoutMs: 10000 };
const RECONNECT = { maxAttempts: 3, baseMs: 1000, capMs: 10000, jitter: 0.1 };
const RETRY_AFTER_CAP_MS = 60000;

// what a test (or a person) reads: window.herdlab
const status = {
  state: "idle", outcome: null, events: [], log: [], attempts: 0, reconnects: 0, acceptedMs: null,
};
window.herdlab = status;

function log(message) {
  const line = `${(performance.now() / 1000).toFixed(3)} s  ${message}`;
  status.log.push(line);
  document.getElementById("log").textContent += line + "\n";
}

function setState(state) {
  status.state = state;
  document.getElementById("state").textContent = state;
}

function end(outcome, text) {
  status.outcome = outcome;
  document.getElementById("result").textContent = text;
  log(`ended: ${outcome} (${text})`);
}

function backoffMs(policy, n) {
  const v = Math.min(policy.baseMs * 2 ** (n - 1), policy.capMs);
  return v * (1 - policy.jitter + 2 * policy.jitter * Math.random());
}

function retryAfterMs(response) {
  const value = response.headers.get("Retry-After");
  if (value === null) return null;
  if (/^\d+$/.test(value.trim())) return Math.min(1000 * Number(value), RETRY_AFTER_CAP_MS);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.min(Math.max(0, when - Date.now()), RETRY_AFTER_CAP_MS);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function createJob() {
  const key = crypto.randomUUID();
  for (let attempt = 1; ; attempt++) {
    status.attempts = attempt;
    let waitMs;
    try {
      const response = await fetch(`${API}/api/ai/jobs`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Herdlab-Client": CLIENT, "Idempotency-Key": key },
        body: "{}",
        signal: AbortSignal.timeout(CREATE.timeoutMs),
      });
      log(`create attempt ${attempt}: ${response.status}`);
      if (response.status === 201) return (await response.json()).id;
      if (response.status !== 429 && response.status < 500) {
        throw new Error(`not retryable: ${response.status}`);
      }
      waitMs = retryAfterMs(response);
    } catch (error) {
      if (String(error.message).startsWith("not retryable")) throw error;
      if (error.name !== "TypeError" && error.name !== "TimeoutError") throw error;
      log(`create attempt ${attempt}: ${error.name}`);
      waitMs = null;
    }
    if (attempt >= CREATE.maxAttempts) throw new Error(`gave up after ${attempt} attempts`);
    const delay = waitMs ?? backoffMs(CREATE, attempt);
    log(`retry ${attempt} in ${Math.round(delay)} ms`);
    await sleep(delay);
  }
}

function streamUrl(jobId, lastEventId) {
  const url = new URL(`${STREAMS}/api/ai/jobs/${jobId}/stream`);
  url.searchParams.set("herdlab_client", CLIENT);
  // a new EventSource cannot send Last-Event-ID itself: the lab takes it as a parameter
  if (lastEventId) url.searchParams.set("lastEventId", lastEventId);
  return url.toString();
}

function onEvent(event) {
  const id = Number(event.lastEventId);
  status.events.push(id);
  const data = JSON.parse(event.data);
  document.getElementById("progress").value = data.progress;
  document.getElementById("pct").textContent = data.progress;
  return data;
}

// the seed plan: our own backoff on top of EventSource, resuming from the last id
function followSeed(jobId) {
  return new Promise((resolve) => {
    let lastId = "";
    let failures = 0;
    const connect = () => {
      setState(lastId || failures ? "reconnecting" : "connecting");
      const es = new EventSource(streamUrl(jobId, lastId));
      es.onopen = () => { failures = 0; setState("connected"); };
      const handle = (event) => { lastId = event.lastEventId; onEvent(event); };
      es.addEventListener("progress", handle);
      es.addEventListener("result", (event) => {
        handle(event);
        es.close();
        setState("disconnected");
        resolve(["completed", "done"]);
      });
      es.onerror = () => {
        es.close(); // stop the browser's own reconnection: the policy decides
        if (failures >= RECONNECT.maxAttempts) {
          setState("disconnected");
          resolve(["gave_up", "connection recovery failed"]);
          return;
        }
        failures += 1;
        status.reconnects += 1;
        const delay = backoffMs(RECONNECT, failures);
        setState("reconnecting");
        log(`stream dropped; reconnect ${failures} in ${Math.round(delay)} ms`);
        setTimeout(connect, delay);
      };
    };
    connect();
  });
}

// EventSource as the browser does it: its own reconnection, nothing on top
function followNative(jobId) {
  return new Promise((resolve) => {
    setState("connecting");
    const es = new EventSource(streamUrl(jobId, ""));
    es.onopen = () => setState("connected");
    es.addEventListener("progress", onEvent);
    es.addEventListener("result", (event) => {
      onEvent(event);
      es.close();
      setState("disconnected");
      resolve(["completed", "done"]);
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        setState("disconnected");
        resolve(["gave_up", "the browser closed the stream for good"]);
      } else {
        status.reconnects += 1;
        setState("reconnecting");
        log("stream dropped; the browser reconnects");
      }
    };
  });
}

async function main() {
  log(`client ${CLIENT}, mode ${MODE}, api ${API}`);
  let jobId;
  try {
    jobId = await createJob();
  } catch (error) {
    end(error.message.startsWith("not retryable") ? "failed" : "gave_up", error.message);
    return;
  }
  status.acceptedMs = performance.now();
  log(`job ${jobId} accepted`);
  const [outcome, text] = await (MODE === "native" ? followNative(jobId) : followSeed(jobId));
  end(outcome, text);
}

// autostart=0: a harness loads the page ahead and starts it on time with herdlabStart()
window.herdlabStart = () => { main(); };
if (params.get("autostart") !== "0") main();
