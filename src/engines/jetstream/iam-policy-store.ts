// IAM policies of the JetStream engine: a KV bucket shared by every instance, mirrored in memory by a watch.
import type { KV, KvEntry } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  checkIamEtag,
  emptyIamPolicy,
  type IamPolicy,
  type IamPolicyWrite,
  iamPolicyFromJson,
  iamPolicyToJson,
  newIamEtag,
} from "../../broker/iam-policy.js";
import { Code, StreamgateError } from "../../errors/index.js";

/**
 * A stored policy and the instance of the resource it was set on (a topic's stream tag, a subscription's
 * id, a snapshot's topic tag and start). A policy whose instance is not the resource's current one
 * belongs to a deleted resource of the same name and counts as absent, so a recreated resource never
 * inherits it, even if the instance deleting the old one stopped before cleaning up.
 */
interface PolicyRecord {
  instance: string;
  policy: string;
}

/** The policies of every resource; reads come from memory, writes compare-and-set on the KV revision. */
export class IamPolicyStore {
  private readonly records = new Map<string, { record: PolicyRecord; revision: number }>();
  private stopWatch: (() => void) | null = null;

  private constructor(private readonly kv: KV) {}

  /** Opens (creating if needed) the bucket `<namespace>-iam`, loads it and starts watching it. */
  static async open(connection: NatsConnection, namespace: string, replicas: number): Promise<IamPolicyStore> {
    const kv = await new Kvm(connection).create(`${namespace}-iam`, { history: 1, replicas });
    const store = new IamPolicyStore(kv);
    const watch = await kv.watch({ key: ">" });
    let loaded: () => void = () => {};
    const initial = new Promise<void>((resolve) => {
      loaded = resolve;
    });
    void (async () => {
      for await (const entry of watch) {
        store.apply(entry);
        if (entry.delta === 0) loaded();
      }
      loaded();
    })();
    if ((await kv.status()).values === 0) loaded();
    const timer = setTimeout(loaded, 2000);
    await initial;
    clearTimeout(timer);
    store.stopWatch = () => watch.stop();
    return store;
  }

  /** The policy set on this `instance` of `resource`, or null. */
  get(resource: string, instance: string): IamPolicy | null {
    const entry = this.records.get(resource);
    return entry === undefined || entry.record.instance !== instance ? null : iamPolicyFromJson(entry.record.policy);
  }

  /**
   * Replaces the policy if its etag matches `write.expectedEtag` (when set) and nobody wrote it meanwhile.
   * @throws StreamgateError ABORTED on an etag mismatch or a concurrent write.
   */
  async set(resource: string, instance: string, write: IamPolicyWrite): Promise<IamPolicy> {
    const current = this.records.get(resource);
    checkIamEtag(this.get(resource, instance) ?? emptyIamPolicy(), write.expectedEtag, resource);
    const policy: IamPolicy = { version: write.version, bindings: write.bindings, etag: newIamEtag() };
    const record: PolicyRecord = { instance, policy: iamPolicyToJson(policy) };
    const key = keyOf(resource);
    let revision: number;
    try {
      revision =
        current === undefined
          ? await this.kv.create(key, JSON.stringify(record))
          : await this.kv.update(key, JSON.stringify(record), current.revision);
    } catch (error) {
      if (!/wrong last sequence|exists/i.test(String(error))) throw error;
      throw new StreamgateError(
        Code.ABORTED,
        `the IAM policy of ${resource} was changed concurrently; get the policy again, apply the change and retry`,
        { reason: "IAM_POLICY_ETAG_MISMATCH", details: { resource }, cause: error },
      );
    }
    this.remember(resource, record, revision);
    return policy;
  }

  /** Deletes the policy of a deleted resource (no-op when there is none). */
  async remove(resource: string): Promise<void> {
    if (!this.records.has(resource)) return;
    await this.kv.delete(keyOf(resource));
    this.records.delete(resource);
  }

  close(): void {
    this.stopWatch?.();
  }

  private remember(resource: string, record: PolicyRecord, revision: number): void {
    if ((this.records.get(resource)?.revision ?? 0) > revision) return;
    this.records.set(resource, { record, revision });
  }

  private apply(entry: KvEntry): void {
    const resource = Buffer.from(entry.key, "base64url").toString("utf8");
    if ((this.records.get(resource)?.revision ?? 0) >= entry.revision) return;
    if (entry.operation !== "PUT") {
      this.records.delete(resource);
      return;
    }
    this.remember(resource, JSON.parse(entry.string()) as PolicyRecord, entry.revision);
  }
}

function keyOf(resource: string): string {
  return Buffer.from(resource, "utf8").toString("base64url");
}
