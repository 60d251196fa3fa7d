// deploy/: every YAML parses and carries the fields streams need; the Dockerfile passes dockerfilelint, has the
// structure the README promises and builds the image from the packed npm package. (No Docker or cluster here: nothing is built or applied.)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const root = fileURLToPath(new URL("../../", import.meta.url));
const deploy = join(root, "deploy");

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, walked by path; the assertions are the type check
type Doc = Record<string, any>;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(entry.name) ? [full] : [];
  });
}

function load(): Map<string, Doc> {
  const byKind = new Map<string, Doc>();
  for (const file of yamlFiles(deploy)) {
    for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
      assert.deepEqual(document.errors, [], `${relative(root, file)} parses`);
      const doc = document.toJS() as Doc | null;
      if (doc === null) continue;
      assert.ok(doc.apiVersion && doc.kind && doc.metadata?.name, `${relative(root, file)}: apiVersion, kind, name`);
      byKind.set(`${doc.apiVersion} ${doc.kind}/${doc.metadata.name}`, doc);
    }
  }
  return byKind;
}

describe("deploy manifests", () => {
  const docs = load();
  /** By "Kind/name"; apiVersion disambiguates (a Knative and a core Service are both Service/streamgate). */
  const get = (key: string, apiVersion?: string) => {
    const doc = [...docs.entries()].find(
      ([have]) => have.endsWith(` ${key}`) && (apiVersion === undefined || have.startsWith(`${apiVersion} `)),
    )?.[1];
    assert.ok(doc, `${key} exists (have ${[...docs.keys()].join(", ")})`);
    return doc;
  };

  test("deploy - Cloud Run: h2c end to end, 3600 s timeout, concurrency, min instances, startup and liveness probes", () => {
    const service = get("Service/streamgate", "serving.knative.dev/v1");
    const template = service.spec.template;
    assert.equal(template.spec.timeoutSeconds, 3600);
    assert.ok(template.spec.containerConcurrency >= 100);
    assert.ok(Number(template.metadata.annotations["autoscaling.knative.dev/minScale"]) >= 1);
    const [container] = template.spec.containers;
    assert.deepEqual(container.ports, [{ name: "h2c", containerPort: 8080 }]);
    assert.equal(container.startupProbe.httpGet.path, "/readyz");
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
  });

  test("deploy - Kubernetes: probes (HTTP and gRPC), h2c Service, ingress-nginx stream annotations, PDB", () => {
    const deployment = get("Deployment/streamgate");
    const [container] = deployment.spec.template.spec.containers;
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
    const probes = [container.readinessProbe, container.livenessProbe, container.startupProbe];
    assert.ok(
      probes.some((probe) => probe?.grpc?.port === 8080),
      "a gRPC probe",
    );
    assert.equal(deployment.spec.template.spec.securityContext.runAsNonRoot, true);
    assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);

    const service = get("Service/streamgate", "v1");
    assert.equal(service.spec.ports[0].appProtocol, "kubernetes.io/h2c");
    assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);

    const grpcIngress = get("Ingress/streamgate-grpc").metadata.annotations;
    assert.equal(grpcIngress["nginx.ingress.kubernetes.io/backend-protocol"], "GRPC");
    assert.ok(Number(grpcIngress["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600);
    const httpIngress = get("Ingress/streamgate-http").metadata.annotations;
    assert.equal(httpIngress["nginx.ingress.kubernetes.io/proxy-buffering"], "off");
    assert.ok(Number(httpIngress["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600);

    const pdb = get("PodDisruptionBudget/streamgate");
    assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
  });

  test("deploy - Dockerfile passes dockerfilelint and is multi-stage, non-root, with a health check", () => {
    const dockerfile = join(deploy, "Dockerfile");
    const bin = join(root, "node_modules/.bin/dockerfilelint");
    const output = execFileSync(bin, ["--output", "json", dockerfile], { encoding: "utf8" });
    const report = JSON.parse(output) as { totalIssues: number; files: { issues: unknown[] }[] };
    assert.equal(report.totalIssues, 0, JSON.stringify(report.files[0]?.issues));

    const text = readFileSync(dockerfile, "utf8");
    const stages = text.match(/^FROM /gm) ?? [];
    assert.ok(stages.length >= 2, "multi-stage");
    assert.match(text, /^USER (?!root|0\b)\S+/m, "non-root user");
    assert.match(text, /^HEALTHCHECK .*\n?.*\/healthz/m);
    assert.match(text, /^EXPOSE 8080$/m);
    for (const copied of text.matchAll(/^COPY (?!--from)(.+) \.\/?\S*$/gm)) {
      for (const source of copied[1]!.split(/\s+/)) {
        assert.ok(readdirSync(root).includes(source), `COPY source ${source} exists in the repository`);
      }
    }
  });

  test("deploy - Dockerfile builds the npm package (npm ci, npm pack) on Node 24, installs that tarball and the runtime image runs it", () => {
    const text = readFileSync(join(deploy, "Dockerfile"), "utf8");
    // Stages by their FROM line; instruction continuations folded so each instruction is one line.
    const stages = text
      .replace(/\\\n\s*/g, " ")
      .split(/^(?=FROM )/m)
      .filter((stage) => stage.startsWith("FROM "));
    const build = stages.find((stage) => /^FROM node:24-bookworm AS build$/m.test(stage));
    assert.ok(build, "a build stage FROM node:24-bookworm AS build");
    assert.match(build, /^RUN npm ci\b/m);
    const pack = /^RUN npm pack --pack-destination (\S+) && mv \S+ (\S+\.tgz)$/m.exec(build);
    assert.ok(pack, "the build stage packs the package (prepack builds dist/)");

    // The install stage installs the packed tarball (on the full image: better-sqlite3 may compile there).
    const installStage = stages.find((stage) => /^FROM node:24-bookworm AS install$/m.test(stage));
    assert.ok(installStage, "an install stage FROM node:24-bookworm AS install");
    const copied = new RegExp(`^COPY --from=build ${pack[2]} (\\S+\\.tgz)$`, "m").exec(installStage);
    assert.ok(copied, `the install stage copies the packed ${pack[2]}`);
    const install = /^RUN npm install --global --prefix (\S+) --omit=dev\b[^&]*\s(\S+\.tgz)(\s|$)/m.exec(installStage);
    assert.ok(install, "the install stage installs a tarball, production dependencies only");
    assert.equal(install[2], copied[1], "the tarball installed is the one packed");

    const runtime = stages.at(-1)!;
    assert.match(runtime, /^FROM node:24-(bookworm-)?slim$/m, "runtime on Node 24 slim");
    const copies = [...runtime.matchAll(/^COPY (.+)$/gm)].map((match) => match[1]);
    assert.deepEqual(
      copies,
      [`--from=install ${install[1]} ${install[1]}`],
      "the runtime stage copies only the installed package",
    );
    assert.match(runtime, new RegExp(`PATH=${install[1]}/bin:`), "the package's bin is on PATH");
    assert.doesNotMatch(runtime, /\btsx\b|npm ci|npm run build|npm install/);
    assert.match(runtime, /^CMD \["streamgate", "serve"\]$/m, "runs the package's bin");
    assert.match(text, /^# Expected image size, an ESTIMATE\b[\s\S]*?about \d+ MB/m, "states the estimated image size");
  });
});
