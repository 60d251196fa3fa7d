// google.iam.v1.IAMPolicy on Pub/Sub resources over the Engine: validates, converts and delegates (gRPC and REST).
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { IAM_PERMISSIONS, type IamPolicy, parseIamResource, validateIamPolicy } from "../../broker/iam-policy.js";
import type { Engine } from "../../engines/engine.js";
import { errors } from "../../errors/index.js";
import type { IAMPolicy } from "../../gen/google/iam/v1/iam_policy_pb.js";
import { type Policy, PolicySchema } from "../../gen/google/iam/v1/policy_pb.js";

/** SetIamPolicy's update_mask paths; an empty mask means `bindings` and `etag`, as in IAM. */
const SETTABLE_PATHS = new Set(["bindings", "etag", "version"]);

function policyToProto(policy: IamPolicy): Policy {
  return create(PolicySchema, {
    version: policy.version,
    bindings: policy.bindings.map((binding) => ({ role: binding.role, members: binding.members })),
    etag: policy.etag,
  });
}

/** Implements Get/Set/TestIamPermissions on topics, subscriptions and snapshots. */
export function createIamPolicyService(engine: Engine): ServiceImpl<typeof IAMPolicy> {
  return {
    async setIamPolicy(request) {
      parseIamResource(request.resource);
      const { policy } = request;
      if (policy === undefined) throw errors.invalidArgument("policy", "is required");
      for (const path of request.updateMask?.paths ?? []) {
        if (!SETTABLE_PATHS.has(path)) {
          throw errors.invalidArgument("update_mask", `path ${JSON.stringify(path)} cannot be set; use bindings, etag`);
        }
      }
      if (policy.auditConfigs.length > 0) {
        throw errors.invalidArgument("policy.audit_configs", "audit configs are not supported on Pub/Sub resources");
      }
      const valid = validateIamPolicy(
        policy.version,
        policy.bindings.map((binding) => ({
          role: binding.role,
          members: binding.members,
          hasCondition: binding.condition !== undefined,
        })),
      );
      const stored = await engine.setIamPolicy(request.resource, { ...valid, expectedEtag: policy.etag });
      return policyToProto(stored);
    },
    async getIamPolicy(request) {
      parseIamResource(request.resource);
      const requested = request.options?.requestedPolicyVersion ?? 0;
      if (requested !== 0 && requested !== 1 && requested !== 3) {
        throw errors.invalidArgument("options.requested_policy_version", `must be 0, 1 or 3, got ${requested}`);
      }
      return policyToProto(await engine.getIamPolicy(request.resource));
    },
    async testIamPermissions(request) {
      const { kind } = parseIamResource(request.resource);
      request.permissions.forEach((permission, index) => {
        if (permission.includes("*")) {
          throw errors.invalidArgument(`permissions[${index}]`, "wildcards are not allowed in permissions");
        }
      });
      // Permissions that do not exist on this kind of resource are never held, so never answered.
      const known = request.permissions.filter((permission) => IAM_PERMISSIONS[kind].includes(permission));
      return { permissions: await engine.testIamPermissions(request.resource, known) };
    },
  };
}
