// A private gRPC service for the tunnel example: demo.v1.Greeter (greeter.proto) on 127.0.0.1:50051.
// Needs `npm install @grpc/grpc-js @grpc/proto-loader`.
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

const proto = grpc.loadPackageDefinition(loadSync(fileURLToPath(new URL("greeter.proto", import.meta.url))));
const server = new grpc.Server();
server.addService(proto.demo.v1.Greeter.service, {
  SayHello: (call, callback) => callback(null, { message: `hello ${call.request.name}, from the backend` }),
});
server.bindAsync("127.0.0.1:50051", grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
  console.log("grpc backend on 127.0.0.1:50051");
});
