import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Wallet } from "ethers";
import { loadNodeConfigFile, parseNodeConfig } from "../../node/daemon/node-config.ts";
import { ConsortError } from "../../node/errors.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

describe("cli/node-config", () => {
  let dir: string;
  const wallet = Wallet.createRandom();
  const env = { CONSORT_PRIVATE_KEY: wallet.privateKey };
  const valid = { rpcUrl: "http://127.0.0.1:8545", dataDir: "data", port: 7001 };
  before(() => (dir = mkdtempSync(join(tmpdir(), "consort-config-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("applies defaults, resolves paths against the file's folder and freezes the result", () => {
    const { config, secrets } = parseNodeConfig(valid, dir, env);
    expect(config.dataDir).to.equal(join(dir, "data"));
    expect(config.publicUrl).to.equal("http://127.0.0.1:7001");
    expect(config.confirmations).to.equal(1);
    expect([config.maxConnections, config.maxConnectionsPerSource]).to.deep.equal([1024, 256]);
    expect(Object.isFrozen(config)).to.equal(true);
    expect(secrets.wallet.address).to.equal(wallet.address);
  });

  it("keeps the signing key out of the config object", () => {
    const { config } = parseNodeConfig(valid, dir, env);
    expect(JSON.stringify(config)).to.not.include(wallet.privateKey.slice(2));
  });

  it("names every invalid field and rejects unknown ones", () => {
    for (const bad of [
      { ...valid, rpcUrl: "ftp://x" },
      { ...valid, rpcUrl: "wss://x" },
      { ...valid, port: -1 },
      { ...valid, confirmations: 1.5 },
      { ...valid, registry: "0x1234" },
      { ...valid, maxConnections: 0 },
      { ...valid, maxConnectionsPerSource: 2.5 },
      { ...valid, dataDirr: "typo" },
    ]) {
      try {
        parseNodeConfig(bad, dir, env);
        expect.fail("accepted an invalid config");
      } catch (error) {
        expect((error as ConsortError).code).to.equal("CONFIG_INVALID");
        const field = Object.keys(bad).find((k) => (bad as Record<string, unknown>)[k] !== (valid as Record<string, unknown>)[k]);
        expect((error as Error).message).to.include(field === "dataDirr" ? "dataDirr" : field!);
      }
    }
  });

  it("reads the key from privateKeyFile, and rejects a bad key without echoing it", () => {
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, `${wallet.privateKey}\n`);
    const { secrets } = parseNodeConfig({ ...valid, privateKeyFile: "key" }, dir, {});
    expect(secrets.wallet.address).to.equal(wallet.address);
    const garbage = "zz".repeat(32);
    try {
      parseNodeConfig(valid, dir, { CONSORT_PRIVATE_KEY: garbage });
      expect.fail("accepted a bad key");
    } catch (error) {
      expect((error as ConsortError).code).to.equal("KEY_INVALID");
      expect((error as Error).message).to.not.include(garbage);
    }
    expectCode(() => parseNodeConfig(valid, dir, {}), "KEY_INVALID");
  });

  it("loads a file with flag overrides on top, and reports an unreadable file", () => {
    const file = join(dir, "node.json");
    writeFileSync(file, JSON.stringify(valid));
    const { config } = loadNodeConfigFile(file, { port: 7009 }, env);
    expect(config.port).to.equal(7009);
    expectCode(() => loadNodeConfigFile(join(dir, "missing.json"), {}, env), "CONFIG_INVALID");
    writeFileSync(join(dir, "array.json"), "[]");
    expectCode(() => loadNodeConfigFile(join(dir, "array.json"), {}, env), "CONFIG_INVALID");
  });
});
