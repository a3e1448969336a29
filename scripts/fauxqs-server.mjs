// Start a fauxqs SQS emulator bound to a loopback address only.
//
// fauxqs's own CLI (`startFauxqs`) always listens on 0.0.0.0, so this launcher
// builds the same Fastify app with fauxqs's exported `buildApp` and listens on
// the address we choose. Used by scripts/test-servers.sh; it can also be run by
// hand:
//
//   node scripts/fauxqs-server.mjs --host 127.0.0.1 --port 4566
//
// Options (flags win over environment variables):
//   --host ADDR         FAUXQS_BIND_HOST    listen address; must be loopback (default 127.0.0.1)
//   --port N            FAUXQS_PORT         listen port (default 4566; 0 = any free port)
//   --region R          FAUXQS_DEFAULT_REGION  region used when a request carries no
//                                           SigV4 Authorization header (default us-east-1)
//   --queue-url-host H  FAUXQS_QUEUE_URL_HOST  if set, queue URLs look like
//                                           http://sqs.<region>.H:<port>/000000000000/<name>
//                                           (fauxqs's own default, with H=localhost);
//                                           if empty (our default), queue URLs use the
//                                           request's Host header:
//                                           http://127.0.0.1:<port>/000000000000/<name>
//   --log-level L       FAUXQS_LOG_LEVEL    pino level: fatal|error|warn|info|debug
//                                           (default warn; info logs every request)
//
// On startup it prints one line `fauxqs listening on http://ADDR:PORT` to stdout.
// SIGTERM / SIGINT close the server and exit 0.

import { buildApp } from "fauxqs";

function parseArgs(argv) {
    const opts = {};
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const eq = arg.indexOf("=");
        const key = eq >= 0 ? arg.slice(0, eq) : arg;
        const take = () => (eq >= 0 ? arg.slice(eq + 1) : argv[++i]);
        switch (key) {
            case "--host":
                opts.host = take();
                break;
            case "--port":
                opts.port = take();
                break;
            case "--region":
                opts.region = take();
                break;
            case "--queue-url-host":
                opts.queueUrlHost = take();
                break;
            case "--log-level":
                opts.logLevel = take();
                break;
            case "-h":
            case "--help":
                console.log("usage: node scripts/fauxqs-server.mjs [--host 127.0.0.1] [--port N] " +
                    "[--region us-east-1] [--queue-url-host H] [--log-level warn]");
                process.exit(0);
                break;
            default:
                console.error(`fauxqs-server: unknown argument ${arg}`);
                process.exit(2);
        }
    }
    return opts;
}

const args = parseArgs(process.argv.slice(2));
const env = process.env;
const bindHost = args.host ?? env.FAUXQS_BIND_HOST ?? "127.0.0.1";
const port = Number.parseInt(args.port ?? env.FAUXQS_PORT ?? "4566", 10);
const region = args.region ?? env.FAUXQS_DEFAULT_REGION ?? "us-east-1";
const queueUrlHost = args.queueUrlHost ?? env.FAUXQS_QUEUE_URL_HOST ?? "";
const logLevel = args.logLevel ?? env.FAUXQS_LOG_LEVEL ?? "warn";

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;
if (!LOOPBACK.test(bindHost)) {
    console.error(`fauxqs-server: refusing to bind non-loopback address ${bindHost}`);
    process.exit(2);
}
if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`fauxqs-server: bad port ${args.port ?? env.FAUXQS_PORT}`);
    process.exit(2);
}

// buildApp only overrides the queue-URL host when given a truthy `host`; the
// store's built-in default is "localhost" (-> sqs.<region>.localhost:<port>).
// To get request-Host URLs we hand it a store whose `host` is empty. SqsStore
// is not in the package's export map, so load it by file URL next to app.js.
const appUrl = import.meta.resolve("fauxqs");
const { SqsStore } = await import(new URL("./sqs/sqsStore.js", appUrl).href);
const sqsStore = new SqsStore();
sqsStore.host = queueUrlHost;

const app = buildApp({
    logger: { level: logLevel },
    host: queueUrlHost || undefined,
    defaultRegion: region,
    stores: { sqsStore },
});

let closing = false;
async function shutdown(signal) {
    if (closing) return;
    closing = true;
    const timer = setTimeout(() => process.exit(0), 5000);
    timer.unref();
    try {
        await app.close();
    } catch (err) {
        console.error(`fauxqs-server: error while closing after ${signal}: ${err}`);
    }
    process.exit(0);
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));

try {
    const address = await app.listen({ host: bindHost, port });
    console.log(`fauxqs listening on ${address} (region ${region}, queue URL host ${queueUrlHost || "<request Host header>"})`);
} catch (err) {
    console.error(`fauxqs-server: listen on ${bindHost}:${port} failed: ${err?.message ?? err}`);
    process.exit(1);
}
