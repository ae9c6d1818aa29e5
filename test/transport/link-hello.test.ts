import { expect } from "chai";
import { getAddress } from "ethers";
import { generateEncryptionKey } from "../../node/transport/envelope.ts";
import { HELLO_WINDOW_MS, HelloNonces, createLinkHello, parseLinkHello, verifyLinkHello } from "../../node/transport/link-hello.ts";
import { StaticSecrets } from "../../node/transport/session-keys.ts";
import { thrown } from "./peer-fixtures.ts";

const [a, b, c] = [generateEncryptionKey(), generateEncryptionKey(), generateEncryptionKey()];
const fields = {
  chainId: 31337n,
  registry: getAddress("0x" + "5e".repeat(20)),
  taskId: 7n,
  from: getAddress("0x" + "aa".repeat(20)),
  to: getAddress("0x" + "bb".repeat(20)),
};
const sharedAB = new StaticSecrets(a.privateKey).sharedSecret(b.publicKey);
const sharedBA = new StaticSecrets(b.privateKey).sharedSecret(a.publicKey);

describe("transport/link-hello", () => {
  it("is made by one party and checked by the other, once", () => {
    const now = Date.now();
    const text = createLinkHello(fields, sharedAB, now);
    expect(text).to.match(/^[A-Za-z0-9_-]{242}$/);
    const hello = parseLinkHello(text);
    expect(hello).to.include({ chainId: 31337n, registry: fields.registry, taskId: 7n, from: fields.from, to: fields.to, issuedAt: now });
    const nonces = new HelloNonces();
    verifyLinkHello(hello, sharedBA, nonces, now + 1_000);
    expect(thrown(() => verifyLinkHello(parseLinkHello(text), sharedBA, nonces, now + 2_000)).code).to.equal("BAD_SIGNATURE");
  });

  it("refuses a hello made without the pair's key, a tampered one, and a stale or future one", () => {
    const now = Date.now();
    const outsider = new StaticSecrets(c.privateKey).sharedSecret(b.publicKey);
    expect(thrown(() => verifyLinkHello(parseLinkHello(createLinkHello(fields, outsider, now)), sharedBA, new HelloNonces(), now)).code).to.equal("BAD_SIGNATURE");
    const bytes = Buffer.from(createLinkHello(fields, sharedAB, now), "base64url");
    for (const at of [1, 60, 90, 130, 140, 170]) {
      const flipped = Buffer.from(bytes);
      flipped[at]! ^= 0x01;
      expect(thrown(() => verifyLinkHello(parseLinkHello(flipped.toString("base64url")), sharedBA, new HelloNonces(), now)).code, `byte ${at}`).to.equal("BAD_SIGNATURE");
    }
    for (const skew of [HELLO_WINDOW_MS + 1, -(HELLO_WINDOW_MS + 1)]) {
      const hello = parseLinkHello(createLinkHello(fields, sharedAB, now + skew));
      expect(thrown(() => verifyLinkHello(hello, sharedBA, new HelloNonces(), now)).code).to.equal("BAD_SIGNATURE");
    }
  });

  it("rejects what is not a hello with BAD_REQUEST naming the header", () => {
    const good = createLinkHello(fields, sharedAB);
    for (const bad of ["", "not base64!", good.slice(0, 100), `${good}AAAA`, Buffer.alloc(181, 2).toString("base64url")]) {
      const error = thrown(() => parseLinkHello(bad));
      expect([error.code, error.details.field]).to.deep.equal(["BAD_REQUEST", "consort-link-hello"]);
    }
  });
});
