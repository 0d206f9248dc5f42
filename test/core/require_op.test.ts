import { describe, expect, it } from "vitest";
import { UnsupportedError } from "../../core/errors.ts";
import { requireOp } from "../../core/require_op.ts";

interface Demo {
  readonly label: string;
  start?(name: string): string;
  stop?(name: string): string;
  notAMethod?: string;
}

class DemoDriver implements Demo {
  readonly label = "demo";
  start(name: string): string {
    return `${this.label} started ${name}`;
  }
}

describe("requireOp()", () => {
  it("returns the method bound to the driver", () => {
    const start = requireOp(new DemoDriver() as Demo, "start", "demo");
    expect(start("web1")).toBe("demo started web1");
  });

  it("throws UnsupportedError naming the operation and the driver for a missing method", () => {
    const error = (() => {
      try {
        requireOp(new DemoDriver() as Demo, "stop", "demo");
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as UnsupportedError).operation).toBe("stop");
    expect((error as UnsupportedError).driver).toBe("demo");
    expect((error as Error).message).toBe('Operation "stop" is not supported by driver "demo"');
  });

  it("treats a property that is not a function as missing", () => {
    const impl = { notAMethod: "x" } as unknown as { notAMethod?: () => void };
    expect(() => requireOp(impl, "notAMethod", "demo")).toThrow(UnsupportedError);
  });
});
