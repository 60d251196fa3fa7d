// Reloads the TLS certificate, key and client CA when their files change (fs.watch on the folders plus a stat poll).
import { type FSWatcher, readFileSync, statSync, watch } from "node:fs";
import { dirname } from "node:path";
import { createSecureContext, type SecureContextOptions } from "node:tls";

/** The PEM files a TLS listener serves with. */
export interface TlsFiles {
  certPath: string;
  keyPath: string;
  /** PEM bundle of CAs that sign client certificates (mTLS); null when clients are not asked for one. */
  clientCaPath: string | null;
}

/** The secure-context options read from `files`; throws when a file is missing or cert and key do not match. */
export function loadSecureContextOptions(files: TlsFiles): SecureContextOptions {
  const options: SecureContextOptions = { cert: readFileSync(files.certPath), key: readFileSync(files.keyPath) };
  if (files.clientCaPath !== null) options.ca = readFileSync(files.clientCaPath);
  // Builds a context once to check the pair (a key that does not match the certificate throws here).
  createSecureContext(options);
  return options;
}

export interface CertificateWatcherOptions {
  files: TlsFiles;
  /** Called with the new options once the files changed and form a valid pair. */
  apply(options: SecureContextOptions): void;
  /** Called when changed files do not load; the previous certificate stays in use. */
  failed(error: unknown): void;
  /** Interval of the stat poll that backs up fs.watch, in ms. Default 5 000. */
  pollMs?: number;
  /** Quiet time after a change before reloading, so a cert and key written one after the other load together, in ms. Default 200. */
  debounceMs?: number;
}

export interface CertificateWatcher {
  /** Checks the files now; resolves once a reload (if any) has been applied or refused. */
  check(): void;
  close(): void;
}

/**
 * Watches the certificate files. It watches their folders, not the files: editors and
 * Kubernetes secret volumes replace files (Kubernetes swaps the `..data` symlink), which a
 * watch on the old file would miss. The stat poll (following symlinks) catches what fs.watch
 * misses (network file systems, some container mounts). A change is only applied when the
 * file contents differ from what is served and the pair loads.
 */
export function watchCertificateFiles(options: CertificateWatcherOptions): CertificateWatcher {
  const paths = [options.files.certPath, options.files.keyPath, options.files.clientCaPath].filter(
    (path): path is string => path !== null,
  );
  let signature = statSignature(paths);
  let served = readAll(paths);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const reload = () => {
    timer = undefined;
    if (closed) return;
    signature = statSignature(paths);
    const contents = readAll(paths);
    if (contents === served) return;
    let loaded: SecureContextOptions;
    try {
      loaded = loadSecureContextOptions(options.files);
    } catch (error) {
      options.failed(error);
      return;
    }
    served = contents;
    options.apply(loaded);
  };
  const schedule = () => {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(reload, options.debounceMs ?? 200);
    timer.unref();
  };

  const watchers: FSWatcher[] = [];
  for (const folder of new Set(paths.map((path) => dirname(path)))) {
    try {
      const watcher = watch(folder, { persistent: false }, schedule);
      watcher.on("error", () => undefined);
      watchers.push(watcher);
    } catch {
      // Some file systems cannot be watched; the poll below still sees changes.
    }
  }
  const poll = setInterval(() => {
    if (statSignature(paths) !== signature) schedule();
  }, options.pollMs ?? 5_000);
  poll.unref();

  return {
    check: reload,
    close() {
      closed = true;
      clearInterval(poll);
      if (timer !== undefined) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}

/** inode, size and mtime of each file (through symlinks); "" for a missing one. */
function statSignature(paths: string[]): string {
  return paths
    .map((path) => {
      try {
        const stats = statSync(path);
        return `${stats.ino}:${stats.size}:${stats.mtimeMs}`;
      } catch {
        return "";
      }
    })
    .join("|");
}

/** The files' contents joined (a missing file reads as empty), to tell a real change from a touch. */
function readAll(paths: string[]): string {
  return paths
    .map((path) => {
      try {
        return readFileSync(path, "latin1");
      } catch {
        return "";
      }
    })
    .join("\u0000");
}
