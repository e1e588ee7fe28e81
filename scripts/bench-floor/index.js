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
//   7. ends with the image markdown, `finish_reason: "stop"` and `data: [DONE]`.
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
      })(),
    );
    return new Response(readable, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no" },
    });
  },
};
