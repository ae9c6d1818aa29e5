import { expect } from "chai";
import { freePort } from "../../node/cli/local-cluster.ts";

describe("cli/local-cluster", () => {
  it("freePort never hands out the same port twice in a process", async () => {
    // The kernel offers a just-closed port again (here ~1 in 8 of 2,000 consecutive binds did).
    const ports: number[] = [];
    for (let i = 0; i < 1_000; i++) ports.push(await freePort());
    expect(new Set(ports).size).to.equal(ports.length);
    for (const p of ports) expect(p).to.be.within(1, 65_535);
  });
});
