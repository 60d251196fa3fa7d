// A throwaway CA and certificates it signs, made with Debian's openssl (for mTLS tests).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface IssuedCertificate {
  certPath: string;
  keyPath: string;
  cert: Buffer;
  key: Buffer;
}

export interface TestCa extends IssuedCertificate {
  dir: string;
  /** A certificate for `commonName` signed by this CA (a client certificate, or a server one with `altNames`). */
  issue(commonName: string, altNames?: string): IssuedCertificate;
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: "ignore" });
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** Creates a CA named `name` in a new temp folder. */
export function createTestCa(name = "streamgate test CA"): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "streamgate-ca-"));
  const certPath = join(dir, "ca.pem");
  const keyPath = join(dir, "ca.key");
  openssl(["req", "-x509", ...EC_KEY, "-keyout", keyPath, "-out", certPath, "-days", "2", "-subj", `/CN=${name}`]);
  let serial = 0;
  return {
    dir,
    certPath,
    keyPath,
    cert: readFileSync(certPath),
    key: readFileSync(keyPath),
    issue(commonName, altNames) {
      serial += 1;
      const base = join(dir, `issued-${serial}`);
      const csr = `${base}.csr`;
      openssl([
        "req",
        "-new",
        ...EC_KEY,
        "-keyout",
        `${base}.key`,
        "-out",
        csr,
        "-subj",
        `/O=streamgate/CN=${commonName}`,
      ]);
      const extensions = `${base}.ext`;
      const text = altNames === undefined ? "extendedKeyUsage=clientAuth\n" : `subjectAltName=${altNames}\n`;
      writeFileSync(extensions, text);
      openssl([
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        certPath,
        "-CAkey",
        keyPath,
        "-set_serial",
        String(serial),
        "-out",
        `${base}.pem`,
        "-days",
        "2",
        "-extfile",
        extensions,
      ]);
      return {
        certPath: `${base}.pem`,
        keyPath: `${base}.key`,
        cert: readFileSync(`${base}.pem`),
        key: readFileSync(`${base}.key`),
      };
    },
  };
}
