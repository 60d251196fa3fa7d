// The operator's CLI end to end, as child processes of bin/streamgate.mjs: usage, version, did-you-mean, environment
// errors verbatim, config init → check → serve --config, tokens minted by `token create` on every transport,
// `token inspect`, saved contexts, completion, logs, and the agent one-liner carrying an HTTP request.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { createGrpcJsClients, grpc } from "../harness/grpc-js-clients.js";
import { type SpawnedServer, spawnServer } from "../harness/spawn-server.js";
import { EchoClient, type GrpcBackend, startGrpcBackend } from "../harness/tunnel-test-backends.js";
import { waitFor, withTimeout } from "../harness/wait-for.js";

const bin = fileURLToPath(new URL("../../bin/streamgate.mjs", import.meta.url));
const version = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;
const root = mkdtempSync(join(tmpdir(), "streamgate-cli-operator-"));
after(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A clean environment: no server, token or context from the machine; saved contexts under `root`. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: root, XDG_CONFIG_HOME: join(root, "xdg"), ...extra };
}

/** Runs `node bin/streamgate.mjs argv`; `prefix` runs it under another program (setpriv). */
async function runBin(
  argv: string[],
  options: { env?: NodeJS.ProcessEnv; stdin?: string; prefix?: string[]; cwd?: string } = {},
): Promise<Run> {
  const command = [...(options.prefix ?? []), process.execPath, bin, ...argv];
  const child = spawn(command[0]!, command.slice(1), {
    env: options.env ?? cleanEnv(),
    cwd: options.cwd ?? root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.stdin.end(options.stdin ?? "");
  const [code] = (await withTimeout(once(child, "exit"), 60_000, `streamgate ${argv.join(" ")}`)) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

/** Starts a long-running command (serve, agent) and resolves once its stderr matches `ready`. */
async function startBin(
  argv: string[],
  ready: RegExp,
  env = cleanEnv(),
): Promise<{ child: ChildProcess; stderr(): string }> {
  const child = spawn(process.execPath, [bin, ...argv], { env, cwd: root, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  await waitFor(() => ready.test(stderr) || child.exitCode !== null, {
    timeoutMs: 60_000,
    describe: () => `streamgate ${argv.join(" ")} to print ${ready}: ${stderr}`,
  });
  assert.equal(child.exitCode, null, `exited early: ${stderr}`);
  return { child, stderr: () => stderr };
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.kill("SIGTERM");
  const [code] = (await withTimeout(once(child, "exit"), 20_000, "the child to exit")) as [number | null];
  return code;
}

const oneLine = (run: Run, code: number, line: string) => {
  assert.equal(run.stderr, `${line}\n`, "exactly this one line on stderr");
  assert.equal(run.code, code, run.stderr);
};

describe("cli - usage, version and did you mean", () => {
  test("cli - bare streamgate prints the usage, -v the version, mistypes name the closest command or flag", async () => {
    const bare = await runBin([]);
    assert.equal(bare.code, 0);
    assert.equal(bare.stderr, "");
    assert.match(bare.stdout, /^Usage: streamgate COMMAND \[flags\]\n/);
    assert.match(bare.stdout, /\n {2}token create\|inspect +Mint and explain bearer tokens/);
    assert.equal((await runBin(["-v"])).stdout, `streamgate ${version}\n`);
    assert.equal((await runBin(["--version"])).stdout, `streamgate ${version}\n`);
    oneLine(
      await runBin(["topic"]),
      2,
      'streamgate: unknown command "topic" (did you mean streamgate topics?) (see streamgate help)',
    );
    oneLine(
      await runBin(["publsh", "orders"]),
      2,
      'streamgate: unknown command "publsh" (did you mean streamgate publish?) (see streamgate help)',
    );
    oneLine(
      await runBin(["topics", "create", "orders", "--retension", "7d"]),
      2,
      "streamgate: unknown option --retension (did you mean --retention?) (see streamgate topics create --help)",
    );
    const group = await runBin(["token"]);
    assert.equal(group.code, 0);
    assert.match(group.stdout, /^Usage: streamgate token create\|inspect/);
  });

  test("cli - tunnel match says --host is required; an agent rules file checked without --agent says to add it", async () => {
    const agentRules = fileURLToPath(new URL("../../examples/tunnel/agent-rules.yaml", import.meta.url));
    const help = await runBin(["tunnel", "match", "--help"]);
    assert.match(help.stdout, /--host HOST +Required: authority of the request/);
    oneLine(
      await runBin(["tunnel", "match", agentRules, "--agent"]),
      2,
      "streamgate: missing --host (see streamgate tunnel match --help)",
    );
    const checked = await runBin(["tunnel", "check", agentRules]);
    assert.equal(checked.code, 1);
    assert.equal(
      checked.stderr,
      `streamgate: ${agentRules} is invalid: 2 problems; it looks like an agent rules file (upstreams, routes): add --agent\n`,
    );
    assert.equal((await runBin(["tunnel", "check", agentRules, "--agent"])).code, 0);
  });

  test("cli - completion: the bash script completes commands, subcommands and flags in a real bash", async () => {
    const script = join(root, "completion.bash");
    writeFileSync(script, (await runBin(["completion", "bash"])).stdout);
    const complete = (words: string[]) => {
      const result = spawnSync(
        "bash",
        [
          "-c",
          `source ${script}; COMP_WORDS=(${words.map((word) => `'${word}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _streamgate; echo "\${COMPREPLY[*]}"`,
        ],
        { encoding: "utf8" },
      );
      assert.equal(result.status, 0, result.stderr);
      return result.stdout.trim();
    };
    assert.equal(complete(["streamgate", "top"]), "topics");
    assert.equal(complete(["streamgate", "topics", "cr"]), "create");
    assert.equal(complete(["streamgate", "topics", "create", "orders", "--ret"]), "--retention");
    assert.equal(complete(["streamgate", "serve", "--data-d"]), "--data-dir");
    const fish = await runBin(["completion", "fish"]);
    assert.match(fish.stdout, /^complete -c streamgate -n __fish_use_subcommand -a topics /m);
    assert.match(fish.stdout, /__fish_seen_subcommand_from token; and __fish_seen_subcommand_from create' -l grant -r/);
    const zsh = await runBin(["completion", "zsh"]);
    assert.match(zsh.stdout, /bashcompinit/);
    oneLine(await runBin(["completion", "tcsh"]), 2, 'streamgate: unknown shell "tcsh": expected bash, zsh or fish');
  });
});

describe("cli - environment errors name the path or listener, the cause and the fix; a failed start leaves nothing", () => {
  const dataFlag = "--data-dir (STREAMGATE_DATA_DIR, config dataDir)";

  test("serve - a data dir that is a file", async () => {
    const file = join(root, "data-is-a-file");
    writeFileSync(file, "");
    oneLine(
      await runBin(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", file]),
      1,
      `streamgate: data dir ${file} is a file, not a directory: point ${dataFlag} at a directory, or move the file away`,
    );
  });

  test("serve - a read-only data dir, and one that cannot be created in a read-only folder", async () => {
    const readOnly = join(root, "read-only");
    mkdirSync(readOnly);
    chmodSync(readOnly, 0o555);
    // Root writes anywhere; without the capability to override file modes it meets the mode like anyone else.
    const prefix =
      process.getuid?.() === 0 ? ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"] : [];
    oneLine(
      await runBin(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", readOnly], { prefix }),
      1,
      `streamgate: data dir ${readOnly} is not writable (EACCES): make it writable for this user, or point ${dataFlag} at a writable directory`,
    );
    const inside = join(readOnly, "data");
    oneLine(
      await runBin(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", inside], { prefix }),
      1,
      `streamgate: data dir ${inside} cannot be created in ${readOnly} (EACCES): create it with write access for this user, or point ${dataFlag} at a writable directory`,
    );
  });

  test("serve - a port in use names the listener and its flag, and leaves no new data dir (main and tunnel entry)", async () => {
    const blocker = createTcpServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const port = (blocker.address() as { port: number }).port;
    try {
      const dataDir = join(root, "never-created", "data");
      oneLine(
        await runBin(["serve", "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir]),
        1,
        `streamgate: port ${port} is already in use (EADDRINUSE on 127.0.0.1:${port}, the main listener, set by --port / $PORT): stop the process using it, or choose another port with --port`,
      );
      assert.equal(existsSync(join(root, "never-created")), false, "a failed start created the data dir");

      // The main port binds and the database opens before the tunnel entry fails: both are undone.
      const rules = join(root, "tunnel-rules.yaml");
      const rulesText =
        "version: 1\nagents:\n  - name: a\n    token: t0123456789\n    groups: [g]\nrules:\n  - name: r\n    group: g\n";
      writeFileSync(rules, rulesText);
      const tunnelData = join(root, "tunnel-data");
      const existing = join(root, "existing-data");
      mkdirSync(existing);
      writeFileSync(join(existing, "keep.txt"), "mine");
      for (const dir of [tunnelData, existing]) {
        const run = await runBin([
          "serve",
          ...["--host", "127.0.0.1", "--port", "0", "--data-dir", dir, "--tunnel-rules", rules],
          ...["--tunnel-http-port", String(port), "--tunnel-grpc-port", "0"],
        ]);
        oneLine(
          run,
          1,
          `streamgate: port ${port} is already in use (EADDRINUSE on 127.0.0.1:${port}, the tunnel HTTP entry, set by --tunnel-http-port / $STREAMGATE_TUNNEL_HTTP_PORT): stop the process using it, or choose another port with --tunnel-http-port`,
        );
      }
      assert.equal(existsSync(tunnelData), false, "a failed start left its new data dir behind");
      assert.deepEqual(readFileSync(join(existing, "keep.txt"), "utf8"), "mine");
      assert.equal(existsSync(join(existing, "streamgate.db")), false, "a failed start left a new database behind");
    } finally {
      blocker.close();
    }
  });

  test("serve - on all interfaces the start line lists every reachable address and warns; JSON logs off a terminal", async () => {
    const dataDir = join(root, "all-interfaces");
    const { child, stderr } = await startBin(
      ["serve", "--host", "0.0.0.0", "--insecure", "--port", "0", "--data-dir", dataDir, "--log-level", "warn"],
      // All three: the auth warning (logged as the port binds), the start line and the all-interfaces warning after
      // it (separate writes: on a loaded machine the last may come later than the start line).
      /^(?=[\s\S]*AUTH IS OFF)(?=[\s\S]*streamgate listening on)(?=[\s\S]*bound to all interfaces)/,
    );
    try {
      const all = stderr().split("\n");
      // The JSON log lines go through the logger's own stream: one may land between the two printed lines.
      const lines = all.filter((line) => !line.startsWith("{"));
      const start = lines.findIndex((line) => line.startsWith("streamgate listening on "));
      assert.match(
        lines[start]!,
        /^streamgate listening on http:\/\/127\.0\.0\.1:(\d+)( and http:\/\/[\d.]+:\1)* \(engine embedded, data .+\)$/,
      );
      assert.equal(
        lines[start + 1],
        "streamgate: warning: bound to all interfaces (0.0.0.0): other machines can connect; bind one address with --host",
      );
      const log = all.find((line) => line.includes("AUTH IS OFF"))!;
      assert.equal((JSON.parse(log) as { level: number }).level, 40, "a JSON line at warn");
    } finally {
      assert.equal(await stop(child), 0);
    }
  });

  test("serve - --log-format pretty writes readable lines with the level and message", async () => {
    const { child, stderr } = await startBin(
      ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", join(root, "pretty"), "--log-format", "pretty"],
      // Both: the warning (logged as the port binds) and the start line (printed once signals are handled).
      /^(?=[\s\S]*AUTH IS OFF)(?=[\s\S]*streamgate listening on)/,
    );
    try {
      const line = stderr()
        .split("\n")
        .find((text) => text.includes("AUTH IS OFF"))!;
      assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: AUTH IS OFF: /);
    } finally {
      assert.equal(await stop(child), 0);
    }
  });
});

describe("cli - config init, check and serve --config", () => {
  test("config - init writes every default, check accepts it and names a bad key's line, serve --config reads it", async () => {
    const file = join(root, "streamgate.yaml");
    const init = await runBin(["config", "init", file]);
    assert.equal(init.code, 0, init.stderr);
    assert.match(readFileSync(file, "utf8"), /^port: 8080$/m);
    oneLine(
      await runBin(["config", "init", file]),
      1,
      `streamgate: ${file} already exists: pass --force to overwrite it, or name another file`,
    );
    const checked = await runBin(["config", "check", file]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, new RegExp(`^${file}: ok \\(sets host, port, `));

    const dataDir = join(root, "config-data");
    const edited = readFileSync(file, "utf8")
      .replace(/^host: .*$/m, 'host: "127.0.0.1"')
      .replace(/^port: .*$/m, "port: 0")
      .replace(/^dataDir: .*$/m, `dataDir: ${JSON.stringify(dataDir)}`)
      .replace(/^logLevel: .*$/m, "logLevel: debug");
    writeFileSync(file, `${edited}retension: 7d\n`);
    const lines = edited.split("\n").length;
    oneLine(await runBin(["config", "check", file]), 1, `streamgate: ${file}:${lines}: unknown key "retension"`);
    writeFileSync(file, edited.replace(/^drainMs: .*$/m, "drainMs: soon"));
    const drainLine = edited.split("\n").findIndex((line) => line.startsWith("drainMs:")) + 1;
    oneLine(
      await runBin(["serve", "--config", file]),
      2,
      `streamgate: ${file}:${drainLine}: drainMs: expected an integer (ms), got "soon"`,
    );
    writeFileSync(file, edited);
    assert.equal((await runBin(["config", "check", file])).code, 0);

    // The file sets host, port, data dir and debug logs; a flag overrides the file's log level.
    const { child, stderr } = await startBin(["serve", "--config", file, "--log-level", "warn"], /listening on/);
    try {
      assert.match(
        stderr(),
        /^streamgate listening on http:\/\/127\.0\.0\.1:\d+ \(engine embedded, data .*config-data\)$/m,
      );
      assert.ok(statSync(dataDir).isDirectory());
      assert.doesNotMatch(stderr(), /"level":20/, "--log-level warn overrides the file's debug");
    } finally {
      assert.equal(await stop(child), 0);
    }
  });
});

describe("cli - tokens from token create on every transport", () => {
  let server: SpawnedServer;
  const secretFile = join(root, "secrets", "secret.txt");
  let admin: string;
  let orders: string;
  let payments: string;

  const mint = async (...grants: string[]) => {
    const run = await runBin(["token", "create", "--auth-secret-file", secretFile, "--sub", "cli-test", ...grants]);
    assert.equal(run.code, 0, run.stderr);
    return run.stdout.trim();
  };

  before(async () => {
    server = await spawnServer([
      ...["--data-dir", join(root, "auth-data"), "--auth-secret-file", secretFile, "--auth-secret-generate"],
    ]);
    admin = await mint("--grant", "admin:*");
    orders = await mint("--grant", "publish:topics/orders", "--grant", "subscribe:topics/orders");
    payments = await mint("--grant", "publish:topics/payments", "--grant", "subscribe:topics/payments");
    const created = await runBin(["topics", "create", "orders", "--server", server.url, "--token", admin]);
    assert.equal(created.code, 0, created.stderr);
  });
  after(() => server?.kill());

  test("serve - a start that fails after generating the secret removes it and the folder it made", async () => {
    const blocker = createTcpServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    try {
      const port = String((blocker.address() as { port: number }).port);
      const fresh = join(root, "fresh-secrets", "deep", "secret.txt");
      const run = await runBin([
        ...["serve", "--host", "127.0.0.1", "--port", port, "--data-dir", join(root, "fresh-data")],
        ...["--auth-secret-file", fresh, "--auth-secret-generate"],
      ]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^streamgate: port \d+ is already in use/);
      assert.equal(existsSync(join(root, "fresh-secrets")), false);
      assert.equal(existsSync(join(root, "fresh-data")), false);
    } finally {
      blocker.close();
    }
  });

  test("token - token create reads the key settings from the same --config file as serve", async () => {
    const config = join(root, "token-config.yaml");
    writeFileSync(config, `authSecretFile: ${JSON.stringify(secretFile)}\n`);
    const minted = await runBin(["token", "create", "--config", config, "--sub", "cfg", "--grant", "admin:*"]);
    assert.equal(minted.code, 0, minted.stderr);
    const listed = await runBin(["topics", "list", "--server", server.url, "--token", minted.stdout.trim()]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^orders\b/m);
  });

  test("serve - --auth-secret-generate wrote a 0600 secret and printed how to mint a token", () => {
    assert.equal(statSync(secretFile).mode & 0o777, 0o600);
    assert.ok(readFileSync(secretFile, "utf8").trim().length >= 32);
    assert.match(server.stderr(), /generated a new auth secret in .*secret\.txt \(mode 0600\)/);
    assert.match(
      server.stderr(),
      /streamgate token create --auth-secret-file .*secret\.txt --sub me --grant 'admin:\*'/,
    );
  });

  const rest = (path: string, token: string, method = "POST", body: unknown = {}) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", connection: "close" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });

  test("token - REST: publish with the topic's grant works, another topic's grant is PERMISSION_DENIED; bodies take short names", async () => {
    const data = Buffer.from("via rest").toString("base64");
    const ok = await rest("/v1/projects/default/topics/orders:publish", orders, "POST", { messages: [{ data }] });
    assert.equal(ok.status, 200, await ok.text());
    const denied = await rest("/v1/projects/default/topics/orders:publish", payments, "POST", { messages: [{ data }] });
    assert.equal(denied.status, 403);
    assert.equal(((await denied.json()) as { error: { status: string } }).error.status, "PERMISSION_DENIED");
    // A short topic name in a REST body is the path's project's topic.
    const created = await rest("/v1/projects/default/subscriptions/orders-worker", admin, "PUT", { topic: "orders" });
    assert.equal(created.status, 200);
    assert.equal(((await created.json()) as { topic: string }).topic, "projects/default/topics/orders");
  });

  test("token - gRPC (grpc-js): Publish is accepted with the grant, PERMISSION_DENIED without", async () => {
    const clients = createGrpcJsClients(server.hostPort);
    try {
      const publish = (token: string) =>
        new Promise<grpc.ServiceError | null>((resolve) => {
          const metadata = new grpc.Metadata();
          metadata.set("authorization", `Bearer ${token}`);
          (clients.publisher as unknown as Record<string, (...args: unknown[]) => unknown>).Publish!.call(
            clients.publisher,
            { topic: "projects/default/topics/orders", messages: [{ data: Buffer.from("via grpc") }] },
            metadata,
            { deadline: Date.now() + 10_000 },
            (error: grpc.ServiceError | null) => resolve(error),
          );
        });
      assert.equal(await publish(orders), null);
      assert.equal((await publish(payments))?.code, grpc.status.PERMISSION_DENIED);
    } finally {
      clients.close();
    }
  });

  test("token - SSE: the stream opens and delivers with the grant, 403 without", async () => {
    const open = (token: string) =>
      fetch(`${server.url}/v1/projects/default/topics/orders/events?from=earliest`, {
        headers: { authorization: `Bearer ${token}`, accept: "text/event-stream", connection: "close" },
        signal: AbortSignal.timeout(10_000),
      });
    const ok = await open(orders);
    assert.equal(ok.status, 200);
    const reader = ok.body!.getReader();
    let text = "";
    while (!text.includes("event: message")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString("utf8");
    }
    await reader.cancel();
    assert.match(text, /event: message/);
    const denied = await open(payments);
    assert.equal(denied.status, 403);
    await denied.body?.cancel();
  });

  test("token - WebSocket: a short topic name subscribes with the grant; without it an error frame says PERMISSION_DENIED", async () => {
    const firstFrame = (token: string) =>
      withTimeout(
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const socket = new WebSocket(`${server.url.replace(/^http/, "ws")}/v1/ws`, {
            headers: { authorization: `Bearer ${token}` },
          });
          socket.on("open", () =>
            socket.send(JSON.stringify({ type: "subscribe", id: "s1", topic: "orders", from: "earliest" })),
          );
          socket.on("message", (data) => {
            const frame = JSON.parse(String(data)) as Record<string, unknown>;
            if (frame.type === "subscribed" || frame.type === "pong") return;
            resolve(frame);
            socket.close();
          });
          socket.on("error", reject);
        }),
        10_000,
        "a WebSocket frame",
      );
    const message = await firstFrame(orders);
    assert.equal(message.type, "message", JSON.stringify(message));
    const refused = await firstFrame(payments);
    assert.equal(refused.type, "error", JSON.stringify(refused));
    assert.equal((refused.error as { status?: string } | undefined)?.status ?? refused.status, "PERMISSION_DENIED");
  });

  test("token - the CLI's own clients: chat and tail print PERMISSION_DENIED once, as every command does", async () => {
    const chat = await runBin(["chat", "--user", "eve", "--server", server.url, "--token", payments], {
      stdin: "hello\n",
    });
    assert.equal(chat.code, 1);
    assert.match(chat.stderr, /^streamgate: PERMISSION_DENIED: [^\n]+\n$/);
    const tail = await runBin(["tail", "orders", "--count", "1", "--server", server.url, "--token", payments]);
    assert.equal(tail.code, 1);
    assert.match(tail.stderr, /^streamgate: PERMISSION_DENIED: [^\n]+\n$/);
    assert.doesNotMatch(tail.stderr, /PERMISSION_DENIED: PERMISSION_DENIED/);
    const publish = await runBin(["publish", "orders", "--data", "x", "--server", server.url, "--token", payments]);
    assert.match(publish.stderr, /^streamgate: PERMISSION_DENIED: [^\n]+\n$/);
  });

  test("token inspect - explains grants and times, and says why a server would refuse a token", async () => {
    const inspected = await runBin(["token", "inspect", orders, "--auth-secret-file", secretFile]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.match(inspected.stdout, /^subject: +cli-test$/m);
    // The token lives an hour from its issue; the suite may reach this test minutes after minting it.
    const issued = /^issued: +(\S+) \(/m.exec(inspected.stdout);
    const expires = /^expires: +(\S+) \(in (?:1h|(\d+)m)\)$/m.exec(inspected.stdout);
    assert.ok(issued !== null && expires !== null, inspected.stdout);
    assert.equal(Date.parse(expires[1]!) - Date.parse(issued[1]!), 3_600_000, inspected.stdout);
    if (expires[2] !== undefined) assert.ok(Number(expires[2]) >= 50 && Number(expires[2]) <= 60, inspected.stdout);
    assert.match(inspected.stdout, /^algorithm: +HS256$/m);
    assert.match(inspected.stdout, /^ {2}publish +topics\/orders +topics named orders in any project$/m);
    assert.match(inspected.stdout, /^ {2}subscribe +topics\/orders +topics named orders in any project$/m);
    assert.match(inspected.stdout, /^verdict: +accepted by a server with these key settings$/m);

    const otherSecret = join(root, "other-secret.txt");
    writeFileSync(otherSecret, "another-secret-that-is-long-enough-0123456789");
    const badSignature = await runBin(["token", "inspect", orders, "--auth-secret-file", otherSecret]);
    assert.equal(badSignature.code, 1);
    assert.match(
      badSignature.stdout,
      /^verdict: +refused: TOKEN_BAD_SIGNATURE: token signature does not verify with the server's keys$/m,
    );

    const secret = new TextEncoder().encode(readFileSync(secretFile, "utf8").trim());
    const expired = await new SignJWT({ streamgate: { admin: ["*"] } })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("old")
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(secret);
    const refused = await runBin(["token", "inspect", "-", "--auth-secret-file", secretFile], { stdin: expired });
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /^expires: +[^ ]+ \((60m|1h) ago\)$/m);
    assert.match(refused.stdout, /^ {12}admin on everything also opens the dashboard and \/metrics$/m);
    assert.match(refused.stdout, /^verdict: +refused: TOKEN_EXPIRED: token has expired/m);

    const issuer = await runBin([
      "token",
      "inspect",
      orders,
      "--auth-secret-file",
      secretFile,
      "--auth-issuer",
      "https://x",
    ]);
    assert.match(
      issuer.stdout,
      /^verdict: +refused: TOKEN_WRONG_ISSUER: token issuer \(iss\) is not the expected "https:\/\/x"$/m,
    );
    const keyless = await runBin(["token", "inspect"], { env: cleanEnv({ STREAMGATE_TOKEN: orders }) });
    assert.equal(keyless.code, 0);
    assert.match(keyless.stdout, /^verdict: +signature not checked \(give the server's/m);
    oneLine(
      await runBin(["token", "create", "--auth-secret-file", secretFile, "--sub", "x", "--grant", "read:orders"]),
      2,
      'streamgate: --grant: expected PERMISSION:PATTERN with PERMISSION publish, subscribe or admin (e.g. publish:topics/orders*), got "read:orders"',
    );
  });

  test("context - a saved context gives every client command its server and token; use, ls and rm", async () => {
    const env = cleanEnv({ XDG_CONFIG_HOME: join(root, "contexts") });
    const added = await runBin(["context", "add", "local", "--server", server.url, "--token", admin], { env });
    assert.equal(added.code, 0, added.stderr);
    const file = join(root, "contexts", "streamgate", "contexts.json");
    assert.equal(added.stdout, `saved context local (current) in ${file}\n`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const listed = await runBin(["topics", "list"], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^orders\b/m);
    await runBin(["context", "add", "denied", "--server", server.url, "--token", payments], { env });
    const ls = await runBin(["context", "ls"], { env });
    assert.match(ls.stdout, /^\* local +http:\/\/127\.0\.0\.1:\d+ +yes/m);
    assert.match(ls.stdout, /^ {2}denied +http/m);
    // --context picks another one for one command; a flag still wins over it.
    const denied = await runBin(["publish", "orders", "--data", "x", "--context", "denied"], { env });
    assert.match(denied.stderr, /^streamgate: PERMISSION_DENIED: /);
    const overridden = await runBin(["publish", "orders", "--data", "x", "--context", "denied", "--token", admin], {
      env,
    });
    assert.equal(overridden.code, 0, overridden.stderr);
    oneLine(
      await runBin(["context", "use", "locl"], { env }),
      1,
      'streamgate: no saved context "locl" (did you mean "local"?); saved: local, denied',
    );
    assert.equal((await runBin(["context", "use", "denied"], { env })).stdout, "using context denied\n");
    assert.equal((await runBin(["context", "rm", "denied"], { env })).stdout, "removed context denied\n");
    assert.doesNotMatch((await runBin(["context", "ls"], { env })).stdout, /denied/);
  });
});

describe("cli - the agent one-liner", () => {
  let backend: Server;
  let grpcBackend: GrpcBackend;
  let server: SpawnedServer;
  const agentToken = "one-liner-agent-token-0123456789";

  before(async () => {
    backend = createHttpServer((request, response) => {
      response.writeHead(200, { "content-type": "text/plain" });
      response.end(`backend saw ${request.method} ${request.url}`);
    });
    backend.listen(0, "127.0.0.1");
    await once(backend, "listening");
    grpcBackend = await startGrpcBackend("one-liner");
    const rules = join(root, "one-liner-rules.yaml");
    writeFileSync(
      rules,
      [
        "version: 1",
        "agents:",
        "  - name: laptop",
        `    token: ${agentToken}`,
        "    groups: [dev]",
        "rules:",
        "  - name: everything",
        "    group: dev",
        "",
      ].join("\n"),
    );
    server = await spawnServer([
      ...["--data-dir", join(root, "one-liner-data"), "--tunnel-rules", rules],
      ...["--tunnel-http-port", "0", "--tunnel-grpc-port", "0"],
    ]);
    await waitFor(() => /tunnel entries: HTTP/.test(server.stderr()), {
      timeoutMs: 10_000,
      describe: () => server.stderr(),
    });
  });
  after(async () => {
    await server?.kill();
    backend?.close();
    await grpcBackend?.close();
  });

  test("agent - --to http://… and --to grpc://… carry an HTTP request and a gRPC call to their backends, no rules file", async () => {
    const [, entry, grpcEntry] =
      /tunnel entries: HTTP (http:\/\/127\.0\.0\.1:\d+), gRPC http:\/\/(127\.0\.0\.1:\d+)/.exec(server.stderr())!;
    const port = (backend.address() as { port: number }).port;
    const agent = await startBin(
      [
        ...["agent", "--server", server.url, "--token", agentToken, "--group", "dev"],
        ...["--to", `http://127.0.0.1:${port}`, "--to", `grpc://127.0.0.1:${grpcBackend.port}`],
      ],
      /streamgate agent: registered/,
      cleanEnv({ STREAMGATE_LOG_LEVEL: "warn" }),
    );
    try {
      const response = await fetch(`${entry}/orders/42?x=1`, {
        headers: { connection: "close" },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "backend saw GET /orders/42?x=1");
      const client = new EchoClient(grpcEntry!, grpc.credentials.createInsecure());
      try {
        const echoed = await new Promise<Buffer>((resolve, reject) =>
          (client as unknown as Record<string, (...args: unknown[]) => unknown>).Unary!.call(
            client,
            Buffer.from("through --to grpc"),
            new grpc.Metadata(),
            { deadline: Date.now() + 10_000 },
            (error: grpc.ServiceError | null, value: Buffer) => (error ? reject(error) : resolve(value)),
          ),
        );
        assert.equal(echoed.toString(), "through --to grpc");
        assert.equal(grpcBackend.log.calls.at(-1)?.method, "Unary");
      } finally {
        client.close();
      }
    } finally {
      assert.equal(await stop(agent.child), 0, agent.stderr());
    }
    oneLine(
      await runBin(["agent", "--server", server.url, "--token", agentToken, "--group", "dev", "--to", "ftp://x:1"]),
      2,
      'streamgate: --to: expected http://, https://, grpc:// or grpcs://, got "ftp://x:1"',
    );
    oneLine(
      await runBin(["agent", "--server", server.url, "--token", agentToken, "--group", "dev"]),
      2,
      "streamgate: give --config FILE (agent rules) or --to URL (one backend, e.g. --to http://localhost:3000), not both (see streamgate agent --help)",
    );
  });
});
