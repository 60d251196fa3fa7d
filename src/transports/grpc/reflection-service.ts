// gRPC server reflection (v1 and v1alpha) answered from the generated file descriptors.
import { createRegistry, type DescFile, type Registry, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { ServerReflection as ReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { ServerReflection as ReflectionV1Alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Request = {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: "allExtensionNumbersOfType"; value: string }
    | { case: undefined; value?: undefined };
};

/** Answers reflection requests for `services` from the descriptors of `files` (and their imports). */
export function createReflection(files: DescFile[], services: () => string[]) {
  const filesByName = new Map<string, DescFile>();
  const collect = (file: DescFile) => {
    if (filesByName.has(file.name)) return;
    filesByName.set(file.name, file);
    for (const dependency of file.dependencies) collect(dependency);
  };
  for (const file of files) collect(file);
  const registry: Registry = createRegistry(...filesByName.values());

  const withDependencies = (file: DescFile): Uint8Array[] => {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (current: DescFile) => {
      if (seen.has(current.name)) return;
      seen.add(current.name);
      out.push(toBinary(FileDescriptorProtoSchema, current.proto));
      for (const dependency of current.dependencies) visit(dependency);
    };
    visit(file);
    return out;
  };

  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const direct = registry.get(symbol);
    if (direct !== undefined && "file" in direct) return direct.file;
    // A method or field name: look up its parent.
    const parent = symbol.slice(0, symbol.lastIndexOf("."));
    const owner = registry.get(parent);
    if (owner !== undefined && "file" in owner) return owner.file;
    return undefined;
  };

  const notFound = (message: string) => ({
    case: "errorResponse" as const,
    value: { errorCode: 5, errorMessage: message },
  });

  const answer = (request: Request) => {
    const { messageRequest } = request;
    switch (messageRequest.case) {
      case "listServices":
        return { case: "listServicesResponse" as const, value: { service: services().map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = filesByName.get(messageRequest.value);
        if (file === undefined) return notFound(`file not found: ${messageRequest.value}`);
        return { case: "fileDescriptorResponse" as const, value: { fileDescriptorProto: withDependencies(file) } };
      }
      case "fileContainingSymbol": {
        const file = fileOfSymbol(messageRequest.value);
        if (file === undefined) return notFound(`symbol not found: ${messageRequest.value}`);
        return { case: "fileDescriptorResponse" as const, value: { fileDescriptorProto: withDependencies(file) } };
      }
      case "fileContainingExtension": {
        const extendee = registry.getMessage(messageRequest.value.containingType);
        const extension =
          extendee === undefined ? undefined : registry.getExtensionFor(extendee, messageRequest.value.extensionNumber);
        if (extension === undefined) return notFound("extension not found");
        return {
          case: "fileDescriptorResponse" as const,
          value: { fileDescriptorProto: withDependencies(extension.file) },
        };
      }
      case "allExtensionNumbersOfType": {
        const message = registry.getMessage(messageRequest.value);
        if (message === undefined) return notFound(`type not found: ${messageRequest.value}`);
        const numbers: number[] = [];
        for (const type of registry) {
          if (type.kind === "extension" && type.extendee.typeName === message.typeName) numbers.push(type.number);
        }
        return {
          case: "allExtensionNumbersResponse" as const,
          value: { baseTypeName: message.typeName, extensionNumber: numbers },
        };
      }
      default:
        return { case: "errorResponse" as const, value: { errorCode: 3, errorMessage: "empty reflection request" } };
    }
  };

  async function* serverReflectionInfo(requests: AsyncIterable<Request>) {
    for await (const request of requests) {
      yield { validHost: request.host, originalRequest: request, messageResponse: answer(request) };
    }
  }

  return {
    v1: { serverReflectionInfo } as unknown as ServiceImpl<typeof ReflectionV1>,
    v1alpha: { serverReflectionInfo } as unknown as ServiceImpl<typeof ReflectionV1Alpha>,
  };
}
