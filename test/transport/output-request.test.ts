import { expect } from "chai";
import { Wallet, getAddress, hexlify } from "ethers";
import { generateEncryptionKey } from "../../node/transport/envelope.ts";
import {
  OUTPUT_REQUEST_MAX_SKEW_SECONDS,
  openOutputResponse,
  parseOutputRequest,
  sealOutputResponse,
  signOutputRequest,
  verifyOutputRequest,
  type UnsignedOutputRequest,
} from "../../node/transport/output-request.ts";
import { expectCode, expectRejection } from "../support/consort-error-assertions.ts";

describe("transport/output-request", () => {
  const requester = Wallet.createRandom();
  const stranger = Wallet.createRandom();
  const party = getAddress("0x00000000000000000000000000000000000000aa");
  const registry = getAddress("0x00000000000000000000000000000000000000bb");
  const now = 1_800_000_000;
  const ephemeral = generateEncryptionKey();
  const unsigned: UnsignedOutputRequest = {
    version: 1,
    chainId: "31337",
    registry,
    taskId: "7",
    requester: requester.address,
    ephemeralKey: hexlify(ephemeral.publicKey),
    issuedAt: now,
  };
  const expected = { chainId: 31337n, registry, requester: requester.address, nowSeconds: now };

  it("a request signed by the requester verifies, and only its ephemeral key opens the answer", async () => {
    const request = parseOutputRequest(JSON.parse(JSON.stringify(await signOutputRequest(unsigned, requester))));
    verifyOutputRequest(request, expected);
    const payload = new TextEncoder().encode("shares of the output");
    const sealed = sealOutputResponse(request, party, payload);
    expect(openOutputResponse(request, party, ephemeral.privateKey, sealed)).to.deep.equal(payload);
    expectCode(() => openOutputResponse(request, party, generateEncryptionKey().privateKey, sealed), "DECRYPTION_FAILED");
    // The answer is bound to the party and the task: it cannot be passed off as another's.
    expectCode(() => openOutputResponse(request, registry, ephemeral.privateKey, sealed), "DECRYPTION_FAILED");
    expectCode(() => openOutputResponse({ ...request, taskId: "8" }, party, ephemeral.privateKey, sealed), "DECRYPTION_FAILED");
  });

  it("rejects a request signed by someone else, or naming someone else as requester", async () => {
    const forged = { ...(await signOutputRequest({ ...unsigned, requester: stranger.address }, stranger)), requester: requester.address };
    expectCode(() => verifyOutputRequest(forged, expected), "BAD_SIGNATURE");
    const own = await signOutputRequest({ ...unsigned, requester: stranger.address }, stranger);
    expectCode(() => verifyOutputRequest(own, expected), "NOT_REQUESTER");
  });

  it("rejects a stale or future request, and one for another chain or registry", async () => {
    const request = await signOutputRequest(unsigned, requester);
    verifyOutputRequest(request, { ...expected, nowSeconds: now + OUTPUT_REQUEST_MAX_SKEW_SECONDS });
    expectCode(() => verifyOutputRequest(request, { ...expected, nowSeconds: now + OUTPUT_REQUEST_MAX_SKEW_SECONDS + 1 }), "BAD_REQUEST", { field: "issuedAt" });
    expectCode(() => verifyOutputRequest(request, { ...expected, nowSeconds: now - OUTPUT_REQUEST_MAX_SKEW_SECONDS - 1 }), "BAD_REQUEST", { field: "issuedAt" });
    expectCode(() => verifyOutputRequest(request, { ...expected, chainId: 1n }), "BAD_REQUEST");
    expectCode(() => verifyOutputRequest(request, { ...expected, registry: party }), "BAD_REQUEST");
  });

  it("parses strictly, naming the bad field", async () => {
    const request = await signOutputRequest(unsigned, requester);
    expectCode(() => parseOutputRequest({ ...request, ephemeralKey: "0x04" }), "BAD_REQUEST", { field: "ephemeralKey" });
    expectCode(() => parseOutputRequest({ ...request, extra: 1 }), "BAD_REQUEST");
    expectCode(() => parseOutputRequest({ ...request, taskId: "-1" }), "BAD_REQUEST", { field: "taskId" });
    await expectRejection(signOutputRequest(unsigned, stranger), "KEY_INVALID");
  });
});
