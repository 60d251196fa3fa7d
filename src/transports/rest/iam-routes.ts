// The REST routes of google.iam.v1.IAMPolicy on Pub/Sub resources: POST (and GET for getIamPolicy) `{resource}:verb`.
import type { DescMethod } from "@bufbuild/protobuf";
import { IAM_RESOURCE_KINDS } from "../../broker/iam-policy.js";
import { IAMPolicy } from "../../gen/google/iam/v1/iam_policy_pb.js";
import type { RestRoute } from "./pubsub-routes.js";

const id = "[^/:]+";
/** Every kind of resource that carries a policy (topics, subscriptions, snapshots, …), from the one table. */
const resourcePath = `^/v1/(?<name>projects/(?<project>${id})/(?:${Object.keys(IAM_RESOURCE_KINDS).join("|")})/${id})`;
const verb = (name: string) => new RegExp(`${resourcePath}:${name}$`);
const rpc = (name: string): DescMethod => IAMPolicy.methods.find((method) => method.localName === name)!;

/** `GET …:getIamPolicy?options.requestedPolicyVersion=3`, as Pub/Sub's REST allows. */
function getOptions(query: URLSearchParams): Record<string, unknown> {
  const version = query.get("options.requestedPolicyVersion");
  return version === null ? {} : { options: { requestedPolicyVersion: Number(version) } };
}

export const iamRoutes: RestRoute[] = [
  {
    httpMethod: "POST",
    pattern: verb("getIamPolicy"),
    rpc: rpc("getIamPolicy"),
    request: (n, _p, b) => ({ ...b, resource: n }),
  },
  {
    httpMethod: "GET",
    pattern: verb("getIamPolicy"),
    rpc: rpc("getIamPolicy"),
    request: (n, _p, _b, q) => ({ ...getOptions(q), resource: n }),
  },
  {
    httpMethod: "POST",
    pattern: verb("setIamPolicy"),
    rpc: rpc("setIamPolicy"),
    request: (n, _p, b) => ({ ...b, resource: n }),
  },
  {
    httpMethod: "POST",
    pattern: verb("testIamPermissions"),
    rpc: rpc("testIamPermissions"),
    request: (n, _p, b) => ({ ...b, resource: n }),
  },
];
