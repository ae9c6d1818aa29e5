import { expect } from "chai";
import { labelKey } from "../../node/transport/message-label.ts";
import { expectCode } from "../support/consort-error-assertions.ts";

describe("transport/message-label", () => {
    it("has a canonical key", () => {
      expect(labelKey({ taskId: 7n, round: 2, gate: "open:0-3" })).to.equal("task/7/round/2/gate/open:0-3");
      expect(labelKey({ taskId: (1n << 256n) - 1n, round: 0, gate: "mul:12-99" })).to.equal(
        `task/${(1n << 256n) - 1n}/round/0/gate/mul:12-99`,
      );
    });

    it("rejects bad labels naming the field", () => {
      const ok = { taskId: 1n, round: 0, gate: "g" };
      expectCode(() => labelKey({ ...ok, taskId: -1n }), "BAD_REQUEST", { field: "label.taskId" });
      expectCode(() => labelKey({ ...ok, taskId: 1n << 256n }), "BAD_REQUEST", { field: "label.taskId" });
      expectCode(() => labelKey({ ...ok, taskId: 1 as unknown as bigint }), "BAD_REQUEST", { field: "label.taskId" });
      expectCode(() => labelKey({ ...ok, round: -1 }), "BAD_REQUEST", { field: "label.round" });
      expectCode(() => labelKey({ ...ok, round: 2 ** 32 }), "BAD_REQUEST", { field: "label.round" });
      expectCode(() => labelKey({ ...ok, round: 1.5 }), "BAD_REQUEST", { field: "label.round" });
      expectCode(() => labelKey({ ...ok, gate: "" }), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => labelKey({ ...ok, gate: "x".repeat(129) }), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => labelKey({ ...ok, gate: "open 0-3" }), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => labelKey({ ...ok, gate: "öpen" }), "BAD_REQUEST", { field: "label.gate" });
      expectCode(() => labelKey({ ...ok, gate: "a\nb" }), "BAD_REQUEST", { field: "label.gate" });
      expect(labelKey({ ...ok, gate: "x".repeat(128) })).to.have.length(`task/1/round/0/gate/`.length + 128);
    });
});
