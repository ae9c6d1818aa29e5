import { Writable } from "node:stream";
import { expect } from "chai";
import { createLogger, type Logger } from "../node/logger.ts";
import { expectCode } from "./support/consort-error-assertions.ts";

/**
 * Parses one JSON text, failing on any object that repeats a key (JSON.parse
 * would silently keep the last one, which is the fault under test).
 */
function parseStrictJson(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at offset ${i} of ${text}`);
  };
  const ws = () => {
    while (/\s/.test(text[i] ?? "")) i++;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') {
      if (i >= text.length) fail("unterminated string");
      i += text[i] === "\\" ? 2 : 1;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const out: Record<string, unknown> = {};
      ws();
      if (text[i] === "}") {
        i++;
        return out;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const key = str();
        if (Object.hasOwn(out, key)) fail(`duplicate key "${key}"`);
        ws();
        if (text[i++] !== ":") fail("expected ':'");
        out[key] = value();
        ws();
        const next = text[i++];
        if (next === "}") return out;
        if (next !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        const next = text[i++];
        if (next === "]") return out;
        if (next !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i));
    if (m === null) return fail("unexpected token");
    i += m[0].length;
    return JSON.parse(m[0]);
  };
  const result = value();
  ws();
  if (i !== text.length) fail("trailing text");
  return result;
}

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString("utf8"));
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => parseStrictJson(l) as Record<string, unknown>),
  };
}

describe("logger", () => {
  const A = "0x00000000000000000000000000000000000000aa";
  const B = "0x00000000000000000000000000000000000000bb";
  let out: ReturnType<typeof capture>;
  let log: Logger;
  beforeEach(() => {
    out = capture();
    log = createLogger("debug", { party: A }, out.stream);
  });

  it("the strict parser used here rejects a repeated key", () => {
    expect(() => parseStrictJson('{"level":40,"a":{"x":1},"level":"warn"}')).to.throw(/duplicate key "level"/);
    expect(parseStrictJson('{"a":[1,{"b":"c\\"d"}],"e":null}')).to.deep.equal({ a: [1, { b: 'c"d' }], e: null });
  });

  it("a call-site field equal to a binding is written once", () => {
    log.warn({ party: A, taskId: "7" }, "not registered yet");
    const [line] = out.lines();
    expect(line).to.include({ party: A, taskId: "7", level: 40, msg: "not registered yet" });
    expect(line).to.not.have.property("fields");
  });

  it("a call-site field that differs from a binding, or repeats a line key, is kept under `fields`", () => {
    log.warn({ party: B, level: "warn", time: "then", pid: -1, hostname: "h", msg: "inner", code: "X" }, "api request failed");
    const [line] = out.lines();
    expect(line).to.include({ party: A, level: 40, pid: process.pid, msg: "api request failed", code: "X" });
    expect(line!.time).to.be.a("string").and.not.equal("then");
    expect(line!.fields).to.deep.equal({ party: B, level: "warn", time: "then", pid: -1, hostname: "h", msg: "inner" });
  });

  it("a call-site `fields` field does not collide with the one the logger adds", () => {
    log.info({ fields: ["a"], level: 1 }, "m");
    const [line] = out.lines();
    expect(line!.fields).to.deep.equal({ fields: ["a"], level: 1 });
  });

  it("a `msg` field without a message argument is the message", () => {
    log.info({ msg: "from the object", n: 1 });
    const [line] = out.lines();
    expect(line).to.include({ msg: "from the object", n: 1 });
  });

  it("a child's binding replaces its parent's binding of the same name, at every depth", () => {
    const child = log.child({ party: B, task: "1" });
    child.info({ party: B }, "one");
    child.child({ task: "2" }).info({ task: "3" }, "two");
    log.info("three");
    const [one, two, three] = out.lines();
    expect(one).to.include({ party: B, task: "1", pid: process.pid });
    expect(one).to.not.have.property("fields");
    expect(two).to.include({ party: B, task: "2" });
    expect(two!.fields).to.deep.equal({ task: "3" });
    expect(three).to.include({ party: A });
    expect(three).to.not.have.property("task");
  });

  it("setBindings replaces a bound value rather than adding a second one", () => {
    const child = log.child({ task: "1" });
    child.setBindings({ party: B, task: "2" });
    child.info("after");
    log.info("root");
    const [after, root] = out.lines();
    expect(after).to.include({ party: B, task: "2", pid: process.pid });
    expect(root).to.include({ party: A });
    expect(root).to.not.have.property("task");
  });

  it("a binding named like a line key is refused when the logger is made, not written twice later", () => {
    for (const key of ["level", "time", "msg", "hostname", "fields"]) {
      expectCode(() => createLogger("info", { [key]: "x" }, out.stream), "INTERNAL");
      expectCode(() => log.child({ [key]: "x" }), "INTERNAL");
      expectCode(() => log.setBindings({ [key]: "x" }), "INTERNAL");
    }
  });

  it("still redacts secret-bearing field names, also when they move under `fields`", () => {
    log.info({ values: [1, 2], share: "s", level: { salt: "pepper" } }, "m");
    const [line] = out.lines();
    expect(line).to.include({ values: "[redacted]", share: "[redacted]" });
    expect(line!.fields).to.deep.equal({ level: { salt: "[redacted]" } });
  });
});
