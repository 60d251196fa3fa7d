// Calls demo.v1.Greeter/SayHello at the address given (default: the tunnel's gRPC entry, 127.0.0.1:8002).
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

const address = process.argv[2] ?? "127.0.0.1:8002";
const proto = grpc.loadPackageDefinition(loadSync(fileURLToPath(new URL("greeter.proto", import.meta.url))));
const client = new proto.demo.v1.Greeter(address, grpc.credentials.createInsecure());
client.SayHello({ name: "tunnel" }, { deadline: Date.now() + 10_000 }, (error, reply) => {
  client.close();
  if (error) {
    console.error(`${grpc.status[error.code]}: ${error.details}`);
    process.exit(1);
  }
  console.log(reply.message);
});
