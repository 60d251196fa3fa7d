// Creates a self-signed certificate for localhost/127.0.0.1 with Debian's openssl (a real peer CI installs).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SelfSigned {
  certPath: string;
  keyPath: string;
  cert: Buffer;
  dir: string;
}

export function createSelfSigned(): SelfSigned {
  const dir = mkdtempSync(join(tmpdir(), "streamgate-tls-"));
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  return { certPath, keyPath, cert: readFileSync(certPath), dir };
}
