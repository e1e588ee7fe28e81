// The floor for the worker benchmark (scripts/bench.py): a plain JS worker doing the least
// that one streamed text→image chat completion needs, against the same fake upstream, so that
// its workerd CPU per request is what the work itself costs before any of our code runs:
//
//   1. read the chat request (JSON) and check the API key;
//   2. take a slot in the account's Durable Object (a JSON command; the object keeps its
//      leases in memory and writes them to storage);
//   3. stream the answer as OpenAI chat chunks over SSE: the role chunk and the same progress
//      lines as the gateway (`reasoning_content`), while it
//   4. solves the captcha (YesCaptcha createTask, then getTaskResult until ready, sleeping
//      CAPTCHA_POLL_INTERVAL between polls),
//   5. sends the image generate call with the upstream's headers and body, parses its JSON,
//   6. releases the slot (the same object, another storage write),
//   7. ends with the image markdown, `finish_reason: "stop"` and `data: [DONE]`,
//   8. and logs the request: one call to the log's Durable Object, which inserts a row of the
//      gateway's size in its SQLite storage and bumps the same counters (account × day,
//      account, hour) and applies retention, as the gateway's LogObject does.
//
// Accounts (access token, project) come from FLOOR_ACCOUNTS, set up by bench.py on the fake.
import { DurableObject } from "cloudflare:workers";

/** One account's slots: what the gateway's AccountObject does per command, no more. */
export class Floor extends DurableObject {
  async fetch(req) {
    const cmd = await req.json();
    if (this.slots === undefined) {
      this.slots = JSON.parse((await this.ctx.storage.get("state")) ?? '{"leases":[],"uses":0}');
    }
    const s = this.slots;
    const now = Date.now();
    s.leases = s.leases.filter((l) => l.expires > now);
    let ok;
    if (cmd.op === "acquire") {
      ok = cmd.limit === null || s.leases.length < cmd.limit;
      if (ok) s.leases.push({ id: cmd.lease_id, expires: now + cmd.lease_ms });
    } else {
      const before = s.leases.length;
      s.leases = s.leases.filter((l) => l.id !== cmd.lease_id);
      ok = s.leases.length !== before;
      s.uses += 1;
    }
    await this.ctx.storage.put("state", JSON.stringify(s));
    return Response.json({ ok, in_flight: s.leases.length });
  }
}

const LOG_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS request_logs (id INTEGER PRIMARY KEY, created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL, operation TEXT NOT NULL, model TEXT NOT NULL, account_id TEXT,
    account_email TEXT, key_name TEXT NOT NULL, status_code INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
    status_text TEXT NOT NULL, progress INTEGER NOT NULL, error_summary TEXT, request_body TEXT NOT NULL,
    response_body TEXT NOT NULL)`,
  "CREATE INDEX IF NOT EXISTS request_logs_created ON request_logs (created_at_ms)",
  "CREATE INDEX IF NOT EXISTS request_logs_account ON request_logs (account_id, created_at_ms)",
  `CREATE TABLE IF NOT EXISTS log_totals (account_id TEXT PRIMARY KEY, email TEXT NOT NULL,
    images INTEGER NOT NULL, errors INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS log_daily (day INTEGER NOT NULL, account_id TEXT NOT NULL,
    images INTEGER NOT NULL, errors INTEGER NOT NULL, PRIMARY KEY (day, account_id))`,
  "CREATE TABLE IF NOT EXISTS log_hourly (hour_ms INTEGER PRIMARY KEY, images INTEGER NOT NULL, errors INTEGER NOT NULL)",
  "CREATE TABLE IF NOT EXISTS log_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
  "INSERT OR IGNORE INTO log_meta (name, value) VALUES ('last_id', 0)",
];

/** The request log: one row and its counters per request, as the gateway's LogObject. */
export class Logs extends DurableObject {
  async fetch(req) {
    const { record: r } = await req.json();
    const sql = this.ctx.storage.sql;
    if (!this.ready) {
      for (const s of LOG_SCHEMA) sql.exec(s);
      this.ready = true;
    }
    const id = sql.exec("UPDATE log_meta SET value = value + 1 WHERE name = 'last_id' RETURNING value").one().value;
    sql.exec(
      "INSERT INTO request_logs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      id, r.created_at_ms, r.updated_at_ms, r.operation, r.model, r.account_id, r.account_email, r.key,
      r.status_code, r.duration_ms, r.status_text, r.progress, null, r.request_body, r.response_body,
    );
    const day = Math.floor(r.updated_at_ms / 86400000);
    const hour = r.updated_at_ms - (r.updated_at_ms % 3600000);
    sql.exec("INSERT INTO log_totals VALUES (?, ?, 1, 0) ON CONFLICT (account_id) DO UPDATE SET email = excluded.email, images = images + 1", r.account_id, r.account_email);
    sql.exec("INSERT INTO log_daily VALUES (?, ?, 1, 0) ON CONFLICT (day, account_id) DO UPDATE SET images = images + 1", day, r.account_id);
    const inHour = sql.exec(
      "INSERT INTO log_hourly VALUES (?, 1, 0) ON CONFLICT (hour_ms) DO UPDATE SET images = images + 1 RETURNING images + errors",
      hour,
    ).one();
    sql.exec("DELETE FROM request_logs WHERE id < ?", id - 10000 + 1);
    if (Object.values(inHour)[0] <= 1) {
      sql.exec("DELETE FROM request_logs WHERE created_at_ms < ?", r.created_at_ms - 30 * 86400000);
      sql.exec("DELETE FROM log_hourly WHERE hour_ms < ?", hour - 8 * 86400000);
      sql.exec("DELETE FROM log_daily WHERE day < ?", day - 8);
    }
    return Response.json({ reply: "id", id });
  }
}

const SITE_KEY = "6LdsFiUsAAAAAIjVDZcuLhaHiDn5nnHVXVRQGeMV";
const UA =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/149.0.0.0 Safari/537.36";
const MODELS = {
  "gemini-3.1-flash-image-landscape": ["NARWHAL", "IMAGE_ASPECT_RATIO_LANDSCAPE"],
};
const encoder = new TextEncoder();
let accounts;

const hex = (n) => {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function command(stub, cmd) {
  const r = await stub.fetch("https://account/cmd", { method: "POST", body: JSON.stringify(cmd) });
  return r.json();
}

async function post(url, body, headers = { "content-type": "application/json" }) {
  const r = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  return r.json();
}

async function solve(env, pageUrl) {
  const base = env.YESCAPTCHA_BASE_URL;
  const clientKey = env.YESCAPTCHA_API_KEY;
  const task = await post(`${base}/createTask`, {
    clientKey,
    task: {
      websiteURL: pageUrl,
      websiteKey: SITE_KEY,
      type: "RecaptchaV3TaskProxylessM1S9",
      pageAction: "IMAGE_GENERATION",
      userAgent: UA,
      minScore: 0.9,
    },
  });
  const interval = Number(env.CAPTCHA_POLL_INTERVAL) * 1000;
  for (let i = 0; i < 40; i++) {
    const r = await post(`${base}/getTaskResult`, { clientKey, taskId: task.taskId });
    if (r.status === "ready") return r.solution;
    await sleep(interval);
  }
  throw new Error("no captcha token");
}

async function generate(env, account, model, prompt, solution) {
  const [name, aspect] = MODELS[model];
  const context = {
    recaptchaContext: { token: solution.gRecaptchaResponse, applicationType: "RECAPTCHA_APPLICATION_TYPE_WEB" },
    sessionId: `;${Date.now()}`,
    projectId: account.project,
    tool: "PINHOLE",
  };
  const body = {
    clientContext: context,
    mediaGenerationContext: { batchId: crypto.randomUUID() },
    useNewMedia: true,
    requests: [
      {
        clientContext: context,
        seed: 1 + Math.floor(Math.random() * 999999),
        imageModelName: name,
        imageAspectRatio: aspect,
        structuredPrompt: { parts: [{ text: prompt }] },
        imageInputs: [],
      },
    ],
  };
  const major = /Chrome\/(\d+)/.exec(solution.userAgent)[1];
  const headers = {
    accept: "*/*",
    "accept-language": "zh-CN,zh;q=0.9",
    "content-type": "application/json",
    origin: "https://labs.google",
    priority: "u=1, i",
    referer: "https://labs.google/",
    "sec-fetch-storage-access": "active",
    "x-browser-channel": "stable",
    "x-browser-copyright": "Copyright 2026 Google LLC. All Rights Reserved.",
    "x-browser-validation": "MRCPrt/rS3JY47x2Yiz9h3ag4U8=",
    "x-browser-year": "2026",
    "user-agent": solution.userAgent,
    "sec-ch-ua": `"Google Chrome";v="${major}", "Chromium";v="${major}", "Not)A;Brand";v="24"`,
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Windows"',
    "sec-fetch-dest": "empty",
    "sec-fetch-mode": "cors",
    "sec-fetch-site": "cross-site",
    authorization: `Bearer ${account.at}`,
  };
  const url = `${env.FLOW_API_BASE_URL}/projects/${account.project}/flowMedia:batchGenerateImages`;
  const r = await post(url, body, headers);
  return r.media[0].image.generatedImage.fifeUrl;
}

export default {
  async fetch(req, env, ctx) {
    if (req.headers.get("authorization") !== `Bearer ${env.API_KEY}`) {
      return new Response("unauthorized", { status: 401 });
    }
    const chat = await req.json();
    const prompt = chat.messages[chat.messages.length - 1].content.trim();
    accounts ??= JSON.parse(env.FLOOR_ACCOUNTS);
    const account = accounts[Math.floor(Math.random() * accounts.length)];
    const stub = env.FLOOR.get(env.FLOOR.idFromName(account.id));
    const lease_id = hex(8);
    await command(stub, { op: "acquire", lease_id, limit: null, lease_ms: 600000 });

    const id = `chatcmpl-${hex(12)}`;
    const created = Math.floor(Date.now() / 1000);
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    const send = (delta, finish_reason = null) =>
      writer.write(
        encoder.encode(
          `data: ${JSON.stringify({
            id,
            object: "chat.completion.chunk",
            created,
            model: chat.model,
            choices: [{ index: 0, delta, finish_reason }],
          })}\n\n`,
        ),
      );
    const line = (text) => send({ reasoning_content: `${text}\n` });

    ctx.waitUntil(
      (async () => {
        send({ role: "assistant", content: "" });
        line(`Image generation started on account ${account.masked}.`);
        line("Solving the captcha and submitting the image request...");
        const page = `https://labs.google/fx/tools/flow/project/${account.project}`;
        const solution = await solve(env, page);
        const image = await generate(env, account, chat.model, prompt, solution);
        line("Image generated.");
        line("Returning the upstream image link...");
        await command(stub, { op: "release", lease_id });
        send({ content: `![Generated Image](${image})` }, "stop");
        writer.write(encoder.encode("data: [DONE]\n\n"));
        await writer.close();
        const now = Date.now();
        const record = {
          id: 0, created_at_ms: created * 1000, updated_at_ms: now, operation: "generate_image",
          model: chat.model, account_id: account.id, account_email: account.masked, key: "root",
          status_code: 200, duration_ms: now - created * 1000, status_text: "completed", progress: 100,
          error_summary: null,
          request_body: JSON.stringify({ model: chat.model, prompt: prompt.slice(0, 2000), has_images: false }),
          response_body: JSON.stringify({ success: true, urls: [image] }),
        };
        const logs = env.LOGS.get(env.LOGS.idFromName("logs"));
        await (await logs.fetch("https://logs/cmd", {
          method: "POST",
          body: JSON.stringify({ op: "append", record, retention: { max_entries: 10000, max_age_ms: 2592000000 } }),
        })).text();
        // The request's JSON log line, as the gateway writes one per request.
        console.log(JSON.stringify({
          request_id: id, method: req.method, path: new URL(req.url).pathname, status: 200,
          duration_ms: Date.now() - created * 1000, subrequests: 6,
        }));
      })(),
    );
    return new Response(readable, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" },
    });
  },
};
