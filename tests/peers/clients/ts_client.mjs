// MCP client driver (TypeScript SDK 1.x: Client + StdioClientTransport) for Tollgate end-to-end tests.
//
// Usage:
//   echo '{"steps":[...]}' | tests/peers/.env/bin/node tests/peers/clients/ts_client.mjs -- COMMAND ARGS...
//   echo '{"steps":[...]}' | tests/peers/.env/bin/node tests/peers/clients/ts_client.mjs --url URL
//
// Same scenario and output format as py_client.py (see its header): steps list_tools, call_tool,
// raw_request, sleep; scenario keys "timeout" (seconds), "elicitation" ({action, content}), "roots".
// A call_tool step with "progress": true reports "progress_count" (progress notifications received
// while the call was in flight) and "sdk_progress_count" (onprogress callbacks; often one short,
// see the note at _onnotification below). The server gets the full environment; its stderr is
// inherited. Error "message"s are the wire messages (the SDK's "MCP error <code>: " prefix is
// stripped). Exit status 0, or 1 with {"connect_error": ...} when spawning/initialize failed.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// Resolve the SDK from tests/peers/node_modules wherever this script is run from.
const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), "..", "package.json"));
const sdk = (p) => import(require.resolve(`@modelcontextprotocol/sdk/${p}`));
const { Client } = await sdk("client/index.js");
const { StdioClientTransport } = await sdk("client/stdio.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");
const T = await sdk("types.js");

const readStdin = async () => {
  let s = "";
  for await (const chunk of process.stdin) s += chunk;
  return s;
};

const promptText = (messages) => {
  const content = messages?.at(-1)?.content;
  return (Array.isArray(content) ? content : [content]).map((b) => b?.text ?? "").join("");
};

// {"name": "tollgate"} plus a plausible value for every other required field.
const autoContent = (schema = {}) => {
  const props = schema.properties ?? {};
  const content = "name" in props || !Object.keys(props).length ? { name: "tollgate" } : {};
  const byType = { string: "tollgate", integer: 1, number: 1, boolean: true, array: [] };
  for (const key of schema.required ?? []) {
    if (key in content) continue;
    const p = props[key] ?? {};
    content[key] = "default" in p ? p.default : (p.enum ?? [byType[p.type] ?? "tollgate"])[0];
  }
  return content;
};

const errorJson = (e) => {
  if (e instanceof T.McpError) {
    const prefix = `MCP error ${e.code}: `;
    const message = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    return { error: { code: e.code, message, ...(e.data !== undefined ? { data: e.data } : {}) } };
  }
  return { exception: `${e?.name ?? "Error"}: ${e?.message ?? e}` };
};

async function main() {
  let argv = process.argv.slice(2);
  if (argv[0] === "--") argv = argv.slice(1);
  if (!argv.length) {
    console.error("usage: node ts_client.mjs -- COMMAND ARGS... < scenario.json");
    return 2;
  }
  const scenario = JSON.parse(await readStdin());
  const timeout = (scenario.timeout ?? 30) * 1000;
  const out = {
    server_info: null, protocol_version: null, results: [], notifications: [], logs: [],
    sampling_requests: [], elicitation_requests: [], roots_requests: 0, stream_errors: [],
  };

  const capabilities = { sampling: {}, elicitation: { form: {}, url: {} } };
  if (scenario.roots) capabilities.roots = { listChanged: true };
  const client = new Client({ name: "tollgate-ts-driver", version: "1" }, { capabilities });

  client.setRequestHandler(T.CreateMessageRequestSchema, async (req) => {
    out.sampling_requests.push(req.params);
    return {
      role: "assistant", model: "tollgate-test-model", stopReason: "endTurn",
      content: { type: "text", text: `sampled: ${promptText(req.params.messages)}` },
    };
  });
  client.setRequestHandler(T.ElicitRequestSchema, async (req) => {
    out.elicitation_requests.push(req.params);
    const action = scenario.elicitation?.action ?? "accept";
    const content = scenario.elicitation?.content ?? autoContent(req.params.requestedSchema);
    return action === "accept" ? { action, content } : { action };
  });
  if (scenario.roots) {
    client.setRequestHandler(T.ListRootsRequestSchema, async () => {
      out.roots_requests += 1;
      return { roots: scenario.roots };
    });
  }
  client.setNotificationHandler(T.LoggingMessageNotificationSchema, (n) => void out.logs.push(n.params));
  // Record every server notification in arrival order (private hook: public handlers would
  // replace the SDK's own progress/cancel handling).
  // Progress is counted here too: the SDK runs notification handlers a microtask late, so when
  // the last progress notification and the response arrive in one chunk its onprogress misses it.
  let inflight = null; // the result object of the call_tool step awaiting its response
  const onNotification = client._onnotification.bind(client);
  client._onnotification = (n) => {
    out.notifications.push({ method: n.method, params: n.params ?? null });
    if (n.method === "notifications/progress" && inflight) inflight.progress_count += 1;
    return onNotification(n);
  };
  client.onerror = (e) => void out.stream_errors.push(`${e?.name}: ${e?.message}`);

  // `--url URL`: Streamable HTTP, with the extra headers of MCP_HEADERS (a JSON object).
  const transport =
    argv[0] === "--url"
      ? new StreamableHTTPClientTransport(new URL(argv[1]), {
          requestInit: { headers: JSON.parse(process.env.MCP_HEADERS || "{}") },
        })
      : new StdioClientTransport({ command: argv[0], args: argv.slice(1), env: process.env });
  // The Client hands the negotiated version to transports that accept it.
  const setVersion = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (v) => {
    out.protocol_version = v;
    setVersion?.(v);
  };
  try {
    await client.connect(transport, { timeout });
  } catch (e) {
    out.connect_error = `${e?.name}: ${e?.message}`;
    console.log(JSON.stringify(out));
    return 1;
  }
  out.server_info = client.getServerVersion() ?? null;

  for (const step of scenario.steps ?? []) {
    try {
      if (step.op === "list_tools") {
        const tools = [];
        let cursor;
        do {
          const page = await client.listTools(cursor ? { cursor } : undefined, { timeout });
          tools.push(...page.tools.map((t) => t.name));
          cursor = page.nextCursor;
        } while (cursor);
        out.results.push({ tools });
      } else if (step.op === "call_tool") {
        const res = {};
        const options = { timeout };
        if (step.progress) {
          Object.assign(res, { progress_count: 0, sdk_progress_count: 0 });
          options.onprogress = () => void (res.sdk_progress_count += 1);
          inflight = res;
        }
        const params = { name: step.name, arguments: step.arguments ?? {} };
        if (step.meta) params._meta = step.meta;
        try {
          out.results.push({ result: await client.callTool(params, T.CallToolResultSchema, options), ...res });
        } finally {
          inflight = null;
        }
      } else if (step.op === "raw_request") {
        const req = { method: step.method, ...(step.params !== undefined ? { params: step.params } : {}) };
        out.results.push({ result: await client.request(req, T.ResultSchema, { timeout }) });
      } else if (step.op === "sleep") {
        await new Promise((r) => setTimeout(r, (step.seconds ?? 0.1) * 1000));
        out.results.push({});
      } else {
        out.results.push({ exception: `unknown op ${JSON.stringify(step.op)}` });
      }
    } catch (e) {
      out.results.push(errorJson(e));
    }
  }
  await client.close();
  console.log(JSON.stringify(out));
  return 0;
}

process.exitCode = await main();
