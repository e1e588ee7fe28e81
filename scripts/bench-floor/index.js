// The floor for the worker benchmark: a plain JS worker that makes the same subrequests as one
// image generation of the gateway (4 fetches to the fake upstream, 2 Durable Object calls that
// each write storage) and nothing else. `wrangler dev` runs it like the real worker, so its
// CPU per request is what those subrequests cost in workerd before any of our code runs.
import { DurableObject } from "cloudflare:workers";

export class Floor extends DurableObject {
  async fetch(req) {
    const body = await req.text();
    await this.ctx.storage.put("state", body);
    return new Response(body);
  }
}

export default {
  async fetch(req, env) {
    const fake = new URL(req.url).searchParams.get("fake");
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${fake}/fife/none.png`);
      await r.arrayBuffer();
    }
    const stub = env.FLOOR.get(env.FLOOR.idFromName("account"));
    for (let i = 0; i < 2; i++) {
      const r = await stub.fetch("https://do/cmd", { method: "POST", body: '{"op":"status"}' });
      await r.text();
    }
    return new Response("ok");
  },
};
