// Runs a worker locally like `wrangler dev`, through wrangler's own `unstable_startWorker`,
// but without the DevTools inspector. Under `wrangler dev` the inspector proxy turns every
// subrequest's network events into requests to wrangler's Node process; a load of thousands
// of subrequests (the benchmark's 10,000-account import) then costs CPU that is not the
// worker's, holds sockets until workerd runs out of descriptors, and drops connections.
//
//   node scripts/dev-worker.mjs --config wrangler.toml --ip 127.0.0.1 --port 8787 \
//        [--persist-to DIR] [--var NAME:VALUE]…
//
// Prints `ready <url>` once it serves; stops on SIGTERM or SIGINT.
import { unstable_startWorker } from "wrangler";

const args = process.argv.slice(2);
const opts = { vars: {} };
for (let i = 0; i < args.length; i += 2) {
  const [flag, value] = [args[i], args[i + 1]];
  if (value === undefined) throw new Error(`${flag} needs a value`);
  if (flag === "--var") {
    const at = value.indexOf(":");
    if (at < 1) throw new Error(`--var wants NAME:VALUE, got ${value}`);
    opts.vars[value.slice(0, at)] = value.slice(at + 1);
  } else if (["--config", "--ip", "--port", "--persist-to"].includes(flag)) {
    opts[flag.slice(2)] = value;
  } else {
    throw new Error(`unknown flag ${flag}`);
  }
}
const bindings = Object.fromEntries(
  Object.entries(opts.vars).map(([k, v]) => [k, { type: "plain_text", value: v }]),
);
const worker = await unstable_startWorker({
  config: opts.config,
  bindings,
  dev: {
    inspector: false,
    watch: false,
    logLevel: "warn",
    persist: opts["persist-to"] ?? false,
    server: { hostname: opts.ip ?? "127.0.0.1", port: Number(opts.port ?? 8787) },
  },
});
await worker.ready;
console.log(`ready ${await worker.url}`);
const stop = async () => {
  await worker.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
