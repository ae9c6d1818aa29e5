import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { freePort, startLocalChain } from "../../node/dev/local-cluster.ts";
import { isConsortError } from "../../node/errors.ts";

describe("cli/local-cluster", () => {
  it("freePort never hands out the same port twice in a process", async () => {
    // The kernel offers a just-closed port again (here ~1 in 8 of 2,000 consecutive binds did).
    const ports: number[] = [];
    for (let i = 0; i < 1_000; i++) ports.push(await freePort());
    expect(new Set(ports).size).to.equal(ports.length);
    for (const p of ports) expect(p).to.be.within(1, 65_535);
  });

  it("startLocalChain does not take another process's JSON-RPC server on its port for its chain", async function () {
    this.timeout(60_000);
    // A stranger answers eth_chainId on the port; the chain started there cannot listen and exits.
    const stranger: Server = createServer((_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ jsonrpc: "2.0", id: 1, result: "0x7a69" }));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => stranger.listen(port, "127.0.0.1", resolve));
    const workDir = mkdtempSync(join(tmpdir(), "consort-local-cluster-test-"));
    try {
      const error = await startLocalChain(workDir, port).then(
        (chain) => chain.stop().then(() => undefined),
        (e: unknown) => e,
      );
      expect(isConsortError(error, "INTERNAL")).to.equal(true);
      expect((error as Error).message).to.contain("exited before it was ready");
    } finally {
      await new Promise((resolve) => stranger.close(resolve));
      rmSync(workDir, { recursive: true, force: true });
    }
  });
});
